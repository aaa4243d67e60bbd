//! A real S3-compatible server on loopback: moto's server, in a child process.

use crate::child_server::ChildServer;
use std::io::{Read, Write};
use std::net::TcpStream;

pub struct S3Server {
    server: ChildServer,
    pub port: u16,
}

impl S3Server {
    pub fn start() -> Self {
        let port = crate::free_port();
        let server = ChildServer::start(
            "moto_server",
            &["-H", "127.0.0.1", "-p", &port.to_string()],
            port,
            "pip install 'moto[server]'",
        );
        Self { server, port }
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// Creates a bucket (moto accepts any credentials).
    pub fn create_bucket(&self, name: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            stream,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send the request");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "creating bucket {name}: {answer}"
        );
    }

    /// The environment the AWS SDKs and mailqueue read.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// Stops the server (an interrupted destination).
    pub fn stop(&mut self) {
        self.server.stop();
    }
}
