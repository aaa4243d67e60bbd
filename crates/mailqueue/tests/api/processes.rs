//! The real binary and the guide's scripts, run as a user would: in a
//! clean environment holding PATH and only what each test gives.

use mailqueue_testkit::{free_port, wait_until};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_mailqueue");

/// `program` with an environment of PATH alone.
pub fn clean_command(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

/// One of the guide's scripts under scripts/backup/, run with this build
/// as its binary and no env file.
pub fn backup_script(name: &str) -> Command {
    let mut c = clean_command(&format!(
        "{}/../../scripts/backup/{name}",
        env!("CARGO_MANIFEST_DIR")
    ));
    c.env("MAILQUEUE_BIN", BIN)
        .env("MAILQUEUE_ENV_FILE", "/nonexistent");
    c
}

/// Asserts that the run succeeded and returns what it printed.
pub fn succeeded(out: Output, what: impl std::fmt::Debug) -> String {
    assert!(
        out.status.success(),
        "{what:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A `mailqueue serve` process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Runs `command serve` on a free port and waits until /healthz answers.
    /// Its log is dropped, unless `MAILQUEUE_TEST_SERVER_LOGS` is set (then
    /// it goes to the test's stderr).
    pub async fn start(mut command: Command) -> Self {
        let port = free_port();
        let logs = if std::env::var_os("MAILQUEUE_TEST_SERVER_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let child = command
            .env("MAILQUEUE_LISTEN", format!("127.0.0.1:{port}"))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(logs)
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        wait_until(
            "the server to answer /healthz",
            Duration::from_secs(30),
            || async {
                client
                    .get(format!("{}/healthz", server.base))
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
            },
        )
        .await;
        server
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary on an embedded store of its own: its data, backups and
/// backup locks under `dir`, with `env` besides.
pub struct Embedded {
    pub dir: mailqueue_testkit::TempDir,
    pub env: Vec<(String, String)>,
}

impl Embedded {
    pub fn new(name: &str) -> Self {
        Self {
            dir: mailqueue_testkit::TempDir::new(name),
            env: Vec::new(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = clean_command(BIN);
        c.env("MAILQUEUE_DATA_DIR", self.dir.path().join("data"))
            .env("MAILQUEUE_BACKUP_DIR", self.dir.path().join("backups"))
            .env("MAILQUEUE_BACKUP_LOCK_DIR", self.dir.path().join("locks"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(self.run(args), args)
    }

    /// A new full-access key's token, from `api-keys create`.
    pub fn api_key(&self, name: &str) -> String {
        self.ok(&["api-keys", "create", "--name", name])
            .lines()
            .last()
            .unwrap()
            .to_string()
    }

    pub async fn serve(&self) -> Server {
        Server::start(self.cmd(&[])).await
    }
}
