//! A real GCS emulator on loopback: the `gcp-storage-emulator` package's
//! server, in memory, in a child process. It serves the JSON API that
//! Google's SDKs (and mailqueue) speak.

use crate::child_server::ChildServer;

pub struct GcsEmulator {
    server: ChildServer,
    pub bucket: String,
}

impl GcsEmulator {
    /// Starts an emulator holding one empty bucket.
    pub fn start(bucket: &str) -> Self {
        let port = crate::free_port();
        let server = ChildServer::start(
            "gcp-storage-emulator",
            &[
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--default-bucket",
                bucket,
                "--in-memory",
                "--quiet",
            ],
            port,
            "pip install gcp-storage-emulator",
        );
        Self {
            server,
            bucket: bucket.to_string(),
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The environment Google's SDKs and mailqueue read.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("STORAGE_EMULATOR_HOST", self.endpoint())]
    }

    /// Stops the emulator (an unreachable destination).
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

impl GcsEmulator {
    /// An object's bytes, read over the JSON API without mailqueue's code.
    pub fn download(&self, name: &str) -> Vec<u8> {
        let (status, body) = self.get(&format!(
            "/download/storage/v1/b/{}/o/{}?alt=media",
            self.bucket,
            name.replace('/', "%2F")
        ));
        assert_eq!(status, 200, "downloading {name}");
        body
    }

    /// The names of the objects under `prefix`.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.get(&format!(
            "/storage/v1/b/{}/o?prefix={}",
            self.bucket,
            prefix.replace('/', "%2F")
        ));
        assert_eq!(status, 200, "listing {prefix}");
        let listing: serde_json::Value = serde_json::from_slice(&body).expect("a JSON listing");
        listing["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn get(&self, target: &str) -> (u16, Vec<u8>) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.server.port))
            .expect("connect to the GCS emulator");
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.server.port
        )
        .expect("send the request");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("read the answer");
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let head = String::from_utf8_lossy(&answer[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        (status, answer[split + 4..].to_vec())
    }
}
