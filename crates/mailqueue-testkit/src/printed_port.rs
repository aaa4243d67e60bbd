//! Helpers run as child processes (the SMTP sink, the DNS server) print
//! the port they listen on as their first line; this waits for it.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// The port `child` printed on its first line of stdout (piped), within 20 s.
pub(crate) async fn printed_port(child: &mut Child, what: &str) -> u16 {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} starts within 20 s"))
    .unwrap_or_else(|e| panic!("read {what}'s port: {e}"));
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what} printed `{line}`, not a port"))
}
