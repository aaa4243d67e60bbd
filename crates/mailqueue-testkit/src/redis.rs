//! A private redis-server per test: its own port and directory, so tests
//! can change persistence settings and stop it without touching others.

use crate::TempDir;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    appendonly: bool,
    /// The uid and gid it runs as, when not this process's.
    user: Option<(u32, u32)>,
    _home: Option<TempDir>,
}

/// The uid and gid of a system user (`redis`), when this process is root
/// and may run a server as it.
pub fn system_user(name: &str) -> Option<(u32, u32)> {
    let me = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if me.ok()? != 0 {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

impl RedisServer {
    /// A fresh server; `appendonly` selects AOF persistence.
    pub fn start(appendonly: bool) -> Self {
        let home = TempDir::new("redis");
        let dir = home.path().to_path_buf();
        let mut server = Self {
            child: None,
            port: crate::free_port(),
            dir,
            appendonly,
            user: None,
            _home: Some(home),
        };
        server.launch();
        server
    }

    /// A server on an existing directory (after a restore), with its layout.
    pub fn start_on(dir: &Path, appendonly: bool) -> Self {
        Self::start_on_as(dir, appendonly, None)
    }

    /// [`Self::start_on`] as the user `user` (uid, gid), as a packaged
    /// Redis runs; `dir` must be that user's.
    pub fn start_on_as(dir: &Path, appendonly: bool, user: Option<(u32, u32)>) -> Self {
        let mut server = Self {
            child: None,
            port: crate::free_port(),
            dir: dir.to_path_buf(),
            appendonly,
            user,
            _home: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        if let Some((uid, gid)) = self.user {
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, gid);
        }
        let child = command
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.cli(&["PING"]).trim() != "PONG" {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server exited with {status} before answering");
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        while self.cli(&["INFO", "persistence"]).contains("loading:1") {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs redis-cli against this server; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            return String::new();
        }
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Writes `n` keys in one pipeline.
    pub fn fill(&self, n: usize) {
        let mut script = String::new();
        for i in 0..n {
            script.push_str(&format!("SET key:{i} value-{i}\n"));
        }
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-cli runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("send keys");
        child.wait().expect("redis-cli ends");
    }

    pub fn dbsize(&self) -> u64 {
        self.cli(&["DBSIZE"]).trim().parse().unwrap_or(0)
    }

    /// Stops the server without saving and starts it again on the same
    /// port and directory (with no persistence, it comes back empty).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Stops the server without saving.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self.cli(&["SHUTDOWN", "NOSAVE"]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
