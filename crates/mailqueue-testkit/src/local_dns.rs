//! A local authoritative DNS server (Python's `dnslib`), serving a zone
//! the test writes: what a domain's owner would publish, and what a
//! resolver (mailqueue's checks, the DKIM verifiers) then finds.

use crate::printed_port::printed_port;
use crate::TempDir;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::process::{Child, Command};

pub struct LocalDns {
    _child: Child,
    pub port: u16,
    dir: TempDir,
}

impl LocalDns {
    pub async fn start() -> Self {
        let dir = TempDir::new("dns");
        let dns = Self::zone_path(&dir);
        std::fs::write(&dns, "{}").expect("write an empty zone");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/dns_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--zone")
            .arg(&dns)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the DNS server (is dnslib installed?)");
        let port = printed_port(&mut child, "the DNS server").await;
        Self {
            _child: child,
            port,
            dir,
        }
    }

    fn zone_path(dir: &TempDir) -> PathBuf {
        dir.path().join("zone.json")
    }

    /// The zone file: `{"name.": {"TXT": [...], "MX": [[10, "host."]]}}`.
    pub fn zone_file(&self) -> PathBuf {
        Self::zone_path(&self.dir)
    }

    /// `127.0.0.1:<port>`, for `MAILQUEUE_DNS_SERVERS`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn zone(&self) -> Map<String, Value> {
        let text = std::fs::read_to_string(self.zone_file()).expect("read the zone");
        serde_json::from_str(&text).expect("the zone is JSON")
    }

    fn write(&self, zone: &Map<String, Value>) {
        let tmp = self.dir.path().join("zone.json.tmp");
        std::fs::write(&tmp, Value::Object(zone.clone()).to_string()).expect("write the zone");
        std::fs::rename(tmp, self.zone_file()).expect("replace the zone");
    }

    /// Publishes the records of a domain as `GET /v1/domains/{id}` lists
    /// them (names relative to `domain`).
    pub fn publish(&self, domain: &str, records: &[Value]) {
        let mut zone = self.zone();
        for r in records {
            let name = format!("{}.{domain}.", r["name"].as_str().expect("a record name"));
            let kind = r["type"].as_str().expect("a record type").to_string();
            let value = match kind.as_str() {
                "MX" => json!([
                    r["priority"],
                    format!("{}.", r["value"].as_str().unwrap_or(""))
                ]),
                _ => r["value"].clone(),
            };
            let entry = zone.entry(name.to_lowercase()).or_insert_with(|| json!({}));
            let list = entry
                .as_object_mut()
                .expect("an entry is an object")
                .entry(kind)
                .or_insert_with(|| json!([]));
            list.as_array_mut().expect("a list").push(value);
        }
        self.write(&zone);
    }

    /// Replaces every record of `name` (absolute, without the final dot).
    pub fn set(&self, name: &str, entry: Value) {
        let mut zone = self.zone();
        zone.insert(format!("{}.", name.to_lowercase()), entry);
        self.write(&zone);
    }

    /// Removes `name` from the zone.
    pub fn remove(&self, name: &str) {
        let mut zone = self.zone();
        zone.remove(&format!("{}.", name.to_lowercase()));
        self.write(&zone);
    }
}
