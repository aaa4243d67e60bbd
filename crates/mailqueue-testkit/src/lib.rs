//! Test helpers that start real things: a fresh PostgreSQL database per
//! test, a private SQLite file, an SMTP server (aiosmtpd) that records what
//! it receives, a scriptable SMTP relay that records the bytes on the wire,
//! object stores (moto's S3, a GCS emulator), a forwarding proxy
//! (tinyproxy), a private Postfix, and free ports.
//! Nothing here is a mock.

mod certificate;
mod child_server;
mod cluster;
mod emails;
mod forward_proxy;
mod gcs;
mod gpg;
mod http_sinks;
mod local_dns;
mod postfix;
mod printed_port;
mod redis;
mod s3;
mod smtp_relay;
mod smtp_sink;
mod stores;
mod tmpfs;
mod wait;
mod webhook_receiver;

pub use certificate::TestCertificate;
pub use cluster::{give_to_server_user, postgres_bin, server_user, TestCluster};
pub use emails::{accepted_group, plain_email};
pub use forward_proxy::ForwardProxy;
pub use gcs::GcsEmulator;
pub use gpg::GpgHome;
pub use http_sinks::{HttpReceiver, Pushgateway};
pub use local_dns::LocalDns;
pub use mailqueue_scratch::{unique_suffix, TempDir, TestDatabase, TestTablespace};
pub use postfix::{PostfixOptions, PostfixRelay, PrivatePostfix};
pub use redis::{system_user, RedisServer};
pub use s3::S3Server;
pub use smtp_relay::{RelayOptions, RelayedCommand, RelayedMessage, TestRelay, SMUGGLING_PAYLOAD};
pub use smtp_sink::{ReceivedMessage, SinkOptions, SinkTls, SmtpSink};
pub use stores::{stored_events, test_store, StoreKind, TestStore};
pub use tmpfs::SmallDisk;
pub use wait::wait_until;
pub use webhook_receiver::{ReceivedHook, ReceiverAnswers, WebhookReceiver};

/// A port that was free a moment ago, on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free port")
}
