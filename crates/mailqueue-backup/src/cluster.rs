//! A PostgreSQL cluster on this machine that mailqueue runs itself: a data
//! directory restored for point-in-time recovery, or the drill's scratch
//! cluster. Server programs run as the data directory's owner (PostgreSQL
//! refuses to run as root); the binaries are PostgreSQL's own for the data
//! directory's version (`/usr/lib/postgresql/<version>/bin`, else `PATH`).

use crate::error::BackupError;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Who runs the server: the owner of the data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// The owner of `path`.
    pub fn of(path: &Path) -> Result<Self, BackupError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| BackupError::io(format!("reading {}", path.display()), e))?;
        Ok(Self {
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }

    /// A system user, e.g. `postgres`.
    pub fn user(name: &str) -> Result<Self, BackupError> {
        let id = |flag: &str| -> Result<u32, BackupError> {
            let out = Command::new("id")
                .args([flag, name])
                .output()
                .map_err(BackupError::cannot_start("id"))?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| {
                    BackupError::Config(format!("there is no user `{name}` to run PostgreSQL as"))
                })
        };
        Ok(Self {
            uid: id("-u")?,
            gid: id("-g")?,
        })
    }

    /// Who this process is.
    pub fn current() -> Result<Self, BackupError> {
        Self::of(Path::new("/proc/self"))
    }

    /// Gives `path` and everything under it to this owner (as root).
    pub fn take(&self, path: &Path) -> Result<(), BackupError> {
        let chown = |p: &Path| {
            std::os::unix::fs::lchown(p, Some(self.uid), Some(self.gid)).map_err(|e| {
                BackupError::io(format!("giving {} to uid {}", p.display(), self.uid), e)
            })
        };
        chown(path)?;
        if path.is_dir() && !path.is_symlink() {
            for entry in std::fs::read_dir(path)
                .map_err(|e| BackupError::io(format!("listing {}", path.display()), e))?
            {
                let entry = entry.map_err(|e| BackupError::io("listing", e))?;
                self.take(&entry.path())?;
            }
        }
        Ok(())
    }
}

/// PostgreSQL's programs of one major version.
#[derive(Clone, Debug)]
pub struct PgBin {
    dir: Option<PathBuf>,
}

impl PgBin {
    /// The programs of `version` (`15`), or the newest installed, or `PATH`.
    pub fn find(version: Option<&str>) -> Self {
        let root = Path::new("/usr/lib/postgresql");
        if let Some(v) = version {
            let dir = root.join(v).join("bin");
            if dir.join("pg_ctl").exists() {
                return Self { dir: Some(dir) };
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let dir = e.path().join("bin");
                dir.join("pg_ctl").exists().then_some((v, dir))
            })
            .collect();
        versions.sort();
        Self {
            dir: versions.pop().map(|(_, d)| d),
        }
    }

    /// The programs of the data directory's version.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        let version = std::fs::read_to_string(data_dir.join("PG_VERSION")).ok();
        Self::find(version.as_deref().map(str::trim))
    }

    pub fn program(&self, name: &str) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }
}

/// A command that runs as `owner` when this process is root.
pub fn as_owner(program: &Path, owner: Owner) -> Command {
    let mut cmd = Command::new(program);
    if Owner::current().is_ok_and(|me| me.uid == 0) && owner.uid != 0 {
        cmd.uid(owner.uid).gid(owner.gid);
    }
    cmd.env("LC_ALL", "C").env("LC_MESSAGES", "C");
    cmd
}

fn tool_output(tool: &'static str, mut cmd: Command) -> Result<Output, BackupError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(BackupError::cannot_start(tool))?;
    if out.status.success() {
        return Ok(out);
    }
    let text = String::from_utf8_lossy(&out.stderr);
    Err(BackupError::Tool {
        tool,
        detail: text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed")
            .trim()
            .to_string(),
    })
}

/// What `pg_controldata` says the cluster is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterState {
    InProduction,
    InArchiveRecovery,
    ShutDown,
    ShutDownInRecovery,
    Other(String),
}

/// A data directory and the server on it.
pub struct Cluster {
    pub data_dir: PathBuf,
    pub owner: Owner,
    pub bin: PgBin,
    pub log_file: PathBuf,
}

impl Cluster {
    pub fn new(data_dir: &Path, owner: Owner) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            owner,
            bin: PgBin::for_data_dir(data_dir),
            log_file: data_dir.join("mailqueue-restore.log"),
        }
    }

    /// `initdb` of a new cluster (trust for local connections only).
    pub fn init(data_dir: &Path, owner: Owner, superuser: &str) -> Result<Self, BackupError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| BackupError::io(format!("creating {}", data_dir.display()), e))?;
        owner.take(data_dir)?;
        let bin = PgBin::find(None);
        let mut cmd = as_owner(&bin.program("initdb"), owner);
        cmd.arg("-D")
            .arg(data_dir)
            .args(["-U", superuser, "-A", "trust", "--no-sync"]);
        tool_output("initdb", cmd)?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            owner,
            bin,
            log_file: data_dir.join("mailqueue-restore.log"),
        })
    }

    /// The command that starts the server, as an operator would type it.
    pub fn start_command(&self) -> String {
        format!(
            "{} -D {} -l {} start",
            self.bin.program("pg_ctl").display(),
            self.data_dir.display(),
            self.log_file.display()
        )
    }

    /// Starts the server without waiting for it.
    pub fn start(&self) -> Result<(), BackupError> {
        let mut cmd = as_owner(&self.bin.program("pg_ctl"), self.owner);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-W", "start"]);
        tool_output("pg_ctl", cmd).map(|_| ())
    }

    /// Stops the server (fast shutdown), if it runs.
    pub fn stop(&self) -> Result<(), BackupError> {
        if !self.running() {
            return Ok(());
        }
        let mut cmd = as_owner(&self.bin.program("pg_ctl"), self.owner);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "-t", "120", "stop"]);
        tool_output("pg_ctl", cmd).map(|_| ())
    }

    /// Whether a postmaster runs on the data directory.
    pub fn running(&self) -> bool {
        let mut cmd = as_owner(&self.bin.program("pg_ctl"), self.owner);
        cmd.arg("-D").arg(&self.data_dir).arg("status");
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn state(&self) -> Result<ClusterState, BackupError> {
        let mut cmd = as_owner(&self.bin.program("pg_controldata"), self.owner);
        cmd.arg("-D").arg(&self.data_dir);
        let out = tool_output("pg_controldata", cmd)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let state = text
            .lines()
            .find_map(|l| l.strip_prefix("Database cluster state:"))
            .map(str::trim)
            .unwrap_or("unknown");
        Ok(match state {
            "in production" => ClusterState::InProduction,
            "in archive recovery" => ClusterState::InArchiveRecovery,
            "shut down" => ClusterState::ShutDown,
            "shut down in recovery" => ClusterState::ShutDownInRecovery,
            other => ClusterState::Other(other.to_string()),
        })
    }

    /// The server log's FATAL and PANIC lines, and the line before each.
    pub fn fatal_lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("FATAL:") || line.contains("PANIC:") {
                if i > 0 && (lines[i - 1].contains("LOG:") || lines[i - 1].contains("DETAIL:")) {
                    out.push(lines[i - 1].to_string());
                }
                out.push(line.to_string());
            }
        }
        out
    }

    /// Waits for the end of recovery: promotion, or for `Pause`, the
    /// pause at the target (the server answers read-only queries then).
    pub async fn wait_promoted_or_paused(
        &self,
        action: crate::restore_pitr::TargetAction,
        timeout: Duration,
    ) -> Result<(), BackupError> {
        match action {
            crate::restore_pitr::TargetAction::Promote => self.wait_promoted(timeout).await,
            crate::restore_pitr::TargetAction::Pause => self.wait_paused(timeout).await,
        }
    }

    /// Waits until the log says recovery paused at its target.
    pub async fn wait_paused(&self, timeout: Duration) -> Result<(), BackupError> {
        self.wait_for(timeout, "reach its target", |c| {
            let log = std::fs::read_to_string(&c.log_file).unwrap_or_default();
            Ok(log.contains("recovery has paused")
                || log.contains("pausing at the end of recovery"))
        })
        .await
    }

    /// Waits until recovery has ended and the server accepts writes: the
    /// server removes `recovery.signal` when it promotes (the control file
    /// alone is no sign: a base backup's copy already says `in production`).
    pub async fn wait_promoted(&self, timeout: Duration) -> Result<(), BackupError> {
        self.wait_for(timeout, "end", |c| {
            Ok(!c.data_dir.join("recovery.signal").exists()
                && c.state()? == ClusterState::InProduction)
        })
        .await
    }

    /// Polls `done` while the server runs; fails with what the server
    /// logged when it stops instead, or after `timeout`.
    async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Self) -> Result<bool, BackupError>,
    ) -> Result<(), BackupError> {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self)? && self.running() {
                return Ok(());
            }
            if !self.running() {
                // pg_ctl -W returns before the postmaster writes its pid.
                tokio::time::sleep(Duration::from_millis(300)).await;
                if !self.running() && !done(self)? {
                    return Err(BackupError::Tool {
                        tool: "PostgreSQL",
                        detail: format!(
                            "the server stopped during recovery: {}",
                            self.fatal_lines().join(" / ")
                        ),
                    });
                }
            }
            if Instant::now() > deadline {
                return Err(BackupError::Tool {
                    tool: "PostgreSQL",
                    detail: format!("recovery did not {what} within {} s", timeout.as_secs()),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
