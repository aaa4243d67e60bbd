//! DNS lookups for domain checks, through `hickory-resolver`.

use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType as HickoryType};
use hickory_resolver::proto::{NoRecords, ProtoErrorKind};
use hickory_resolver::TokioResolver;
use mailqueue_core::domains::{DnsAnswer, DnsLookup, DnsQuery, RecordType};
use std::net::SocketAddr;
use std::time::Duration;

/// Which servers to ask: the system's (`/etc/resolv.conf`), or those of
/// `MAILQUEUE_DNS_SERVERS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DnsServers {
    #[default]
    System,
    These(Vec<SocketAddr>),
}

impl DnsServers {
    /// `127.0.0.1:5353,[::1]:53`; a bare address means port 53.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let servers = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<SocketAddr>()
                    .or_else(|_| {
                        s.parse::<std::net::IpAddr>()
                            .map(|ip| SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| format!("`{s}` is not an address or address:port"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err("no server is listed".into());
        }
        Ok(Self::These(servers))
    }
}

/// A resolver without a cache.
pub struct HickoryLookup {
    resolver: TokioResolver,
}

impl HickoryLookup {
    pub fn new(servers: &DnsServers) -> Result<Self, String> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match servers {
            DnsServers::System => TokioResolver::builder_tokio()
                .map_err(|e| format!("the system's DNS configuration cannot be read: {e}"))?,
            DnsServers::These(addrs) => {
                let mut config = ResolverConfig::from_parts(None, Vec::new(), Vec::new());
                for addr in addrs {
                    config.add_name_server(NameServerConfig::new(*addr, ProtocolConfig::Udp));
                    config.add_name_server(NameServerConfig::new(*addr, ProtocolConfig::Tcp));
                }
                TokioResolver::builder_with_config(config, provider)
            }
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        options.ndots = 0;
        Ok(Self {
            resolver: builder.build(),
        })
    }
}

#[async_trait]
impl DnsLookup for HickoryLookup {
    async fn lookup(&self, query: &DnsQuery) -> DnsAnswer {
        let name = format!("{}.", query.name.trim_end_matches('.'));
        let record_type = match query.record_type {
            RecordType::Txt => HickoryType::TXT,
            RecordType::Mx => HickoryType::MX,
        };
        match self.resolver.lookup(name.as_str(), record_type).await {
            Ok(lookup) => DnsAnswer::Found(
                lookup
                    .record_iter()
                    .filter_map(|r| match r.data() {
                        RData::TXT(txt) => Some(
                            txt.txt_data()
                                .iter()
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .collect::<String>(),
                        ),
                        RData::MX(mx) => {
                            Some(mx.exchange().to_ascii().trim_end_matches('.').to_string())
                        }
                        _ => None,
                    })
                    .collect(),
            ),
            Err(e) => match e.kind() {
                // Only a clean "no such name" or "no such record" means the
                // record is missing; SERVFAIL and the like say nothing.
                ProtoErrorKind::NoRecordsFound(NoRecords {
                    response_code: ResponseCode::NoError | ResponseCode::NXDomain,
                    ..
                }) => DnsAnswer::Missing,
                _ => DnsAnswer::Unreachable(e.to_string()),
            },
        }
    }
}
