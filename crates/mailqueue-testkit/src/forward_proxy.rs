//! A real forwarding HTTP proxy (tinyproxy) on a free loopback port, for
//! tests of what a process does with `HTTP_PROXY` in its environment. Its
//! log says which hosts it was asked to reach.

use crate::child_server::ChildServer;
use crate::{free_port, TempDir};
use std::path::PathBuf;

pub struct ForwardProxy {
    server: ChildServer,
    log: PathBuf,
    _dir: TempDir,
}

impl ForwardProxy {
    pub fn start() -> Self {
        let dir = TempDir::new("proxy");
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let config = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nLogLevel Connect\n\
                 LogFile \"{}\"\nMaxClients 32\n",
                log.display()
            ),
        )
        .expect("write the proxy's configuration");
        let config = config.display().to_string();
        let server = ChildServer::start(
            "tinyproxy",
            &["-d", "-c", &config],
            port,
            "apt-get install tinyproxy",
        );
        Self {
            server,
            log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`, for `HTTP_PROXY` and friends.
    pub fn url(&self) -> String {
        self.server.endpoint()
    }

    /// The hosts the proxy connected to for its clients, in order.
    pub fn connections(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split("Established connection to host \"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(String::from)
            .collect()
    }
}
