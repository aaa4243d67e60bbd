//! A private PostgreSQL cluster per test: `initdb` into a temporary
//! directory, a free port, started with `pg_ctl`, stopped and removed when
//! dropped. Run as the `postgres` user when the tests run as root
//! (PostgreSQL refuses root). Settings go into `postgresql.conf`, so a base
//! backup carries them, as it would in production. The server starts with
//! an environment of PATH alone: commands it runs (`archive_command`) see
//! only what their command line gives them.

use crate::TempDir;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct TestCluster {
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
    _home: TempDir,
}

/// The newest installed PostgreSQL's programs.
pub fn postgres_bin() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL version").1
}

/// `(uid, gid)` of the `postgres` user when running as root.
pub fn server_user() -> Option<(u32, u32)> {
    let me = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if me.ok()? != 0 {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Gives `path` (recursively) to the server's user, so that it can write there.
pub fn give_to_server_user(path: &Path) {
    if let Some((uid, gid)) = server_user() {
        let out = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .output()
            .expect("chown runs");
        assert!(out.status.success(), "chown {}", path.display());
    }
}

impl TestCluster {
    /// A new cluster with these `postgresql.conf` settings on top of a
    /// small, fast base (loopback only, replication allowed, `fsync` off).
    pub fn start(settings: &[(&str, &str)]) -> Self {
        let home = TempDir::new("cluster");
        let data = home.path().join("data");
        std::fs::create_dir_all(&data).expect("create the data directory");
        give_to_server_user(home.path());
        let bin = postgres_bin();
        let port = crate::free_port();
        let cluster = Self {
            port,
            data,
            bin,
            _home: home,
        };
        cluster.run(
            "initdb",
            &["-U", "postgres", "-A", "trust", "--no-sync", "-D"],
            true,
        );
        let mut conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nwal_level = replica\nmax_wal_senders = 4\nshared_buffers = 16MB\n",
            cluster
                .data
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        for (k, v) in settings {
            conf.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        let file = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&file).expect("postgresql.conf");
        text.push_str(&conf);
        std::fs::write(&file, text).expect("write postgresql.conf");
        cluster.pg_ctl(&["-w", "-t", "60", "start"]);
        cluster
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = server_user() {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run(&self, program: &str, args: &[&str], data_last: bool) -> Output {
        let mut cmd = self.command(program);
        cmd.args(args);
        if data_last {
            cmd.arg(&self.data);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn pg_ctl(&self, args: &[&str]) {
        let log = self
            .data
            .parent()
            .map(|p| p.join("server.log"))
            .unwrap_or_default();
        let mut all = vec![
            "-D",
            self.data.to_str().unwrap_or_default(),
            "-l",
            log.to_str().unwrap_or_default(),
        ];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all, false);
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Runs SQL with psql; returns its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.run(
            "psql",
            &[
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(),
                "-c",
                sql,
            ],
            false,
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts the server again after [`Self::stop`], on the same port.
    pub fn start_again(&self) {
        self.pg_ctl(&["-w", "-t", "60", "start"]);
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&self) {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        let _ = cmd.output();
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = cmd.output();
    }
}
