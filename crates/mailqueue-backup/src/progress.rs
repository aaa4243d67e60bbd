//! Progress of a long stream: a redrawn line with bytes and throughput when
//! stderr is a terminal, a log line every 10 seconds otherwise.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

pub struct Progress<R> {
    inner: R,
    label: String,
    bytes: u64,
    started: Instant,
    last_report: Instant,
    terminal: bool,
}

fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

impl<R: Read> Progress<R> {
    pub fn new(inner: R, label: impl Into<String>) -> Self {
        let now = Instant::now();
        Self {
            inner,
            label: label.into(),
            bytes: 0,
            started: now,
            last_report: now,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{}: {} in {:.0} s ({}/s)",
            self.label,
            human(self.bytes as f64),
            secs,
            human(self.bytes as f64 / secs)
        )
    }

    fn report(&mut self, done: bool) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if !done && self.last_report.elapsed() < every {
            return;
        }
        self.last_report = Instant::now();
        if self.terminal {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K{}", self.line());
            if done {
                let _ = writeln!(err);
            }
        } else if !done {
            tracing::info!("{}", self.line());
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.bytes += n as u64;
        self.report(n == 0);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_passes_and_formats_sizes() {
        let mut p = Progress::new(&b"hello world"[..], "test");
        let mut out = Vec::new();
        p.read_to_end(&mut out).unwrap();
        assert_eq!(p.bytes, 11);
        assert!(p.line().starts_with("test: 11.0 B in"));
        assert_eq!(human(3.5 * 1024.0 * 1024.0), "3.5 MiB");
    }
}
