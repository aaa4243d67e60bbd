//! `mailqueue restore redis latest|<id>`: puts a backup where a stopped
//! Redis will load it, then starts a private `redis-server` on the result
//! to check the key count against the manifest.
//!
//! With `appendonly yes`, Redis loads only its AOF and ignores dump.rdb. So
//! an RDB backup is installed as the base of a fresh multi-part AOF
//! (`<appendfilename>.1.base.rdb` plus a manifest), which Redis 7 loads. Files
//! that are replaced are kept aside as `<name>.replaced-<time>`.
//!
//! The restored files belong to whoever owns the data directory (the Redis
//! user), with the mode of the files they replace (`0640`, and `0750` for
//! the AOF directory, when there were none): a restore run as root must
//! not leave root-owned files that Redis cannot read. The private
//! redis-server of the key check runs as that owner too, so a restore that
//! Redis could not load does not pass.

use crate::catalog;
use crate::cluster::Owner;
use crate::destination::Destination;
use crate::error::BackupError;
use crate::kind::BackupKind;
use crate::manifest::Manifest;
use crate::reading::{write_plaintext, Scratch};
use crate::redis_server::{is_running, RedisAdmin};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where and how the stopped Redis keeps its data.
#[derive(Clone, Debug)]
pub struct RedisLayout {
    pub dir: PathBuf,
    pub dbfilename: String,
    pub appendonly: bool,
    pub appenddirname: String,
    pub appendfilename: String,
}

impl RedisLayout {
    /// Reads `dir`, `dbfilename`, `appendonly`, `appenddirname` and
    /// `appendfilename` from a redis.conf; Redis' defaults otherwise.
    pub fn from_conf(text: &str) -> Self {
        let mut layout = Self {
            dir: PathBuf::from("."),
            dbfilename: "dump.rdb".into(),
            appendonly: false,
            appenddirname: "appendonlydir".into(),
            appendfilename: "appendonly.aof".into(),
        };
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            let mut parts = line.splitn(2, char::is_whitespace);
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let value = value.trim().trim_matches('"').to_string();
            match key.to_ascii_lowercase().as_str() {
                "dir" => layout.dir = PathBuf::from(value),
                "dbfilename" => layout.dbfilename = value,
                "appendonly" => layout.appendonly = value.eq_ignore_ascii_case("yes"),
                "appenddirname" => layout.appenddirname = value,
                "appendfilename" => layout.appendfilename = value,
                _ => {}
            }
        }
        layout
    }
}

pub struct RedisRestoreOptions {
    pub layout: RedisLayout,
    /// Must not answer: a running Redis would overwrite the files.
    pub redis_url: Option<String>,
    /// Check the key count with a private redis-server.
    pub check_keys: bool,
}

/// What the restore did.
pub struct RedisRestored {
    pub manifest: Manifest,
    /// Keys the private redis-server loaded, when it was checked.
    pub keys_loaded: Option<u64>,
}

pub async fn restore_redis(
    dest: &Destination,
    kind: BackupKind,
    selector: &str,
    opts: &RedisRestoreOptions,
) -> Result<RedisRestored, BackupError> {
    let manifest = catalog::find(dest, kind, selector).await?;
    if let Some(url) = &opts.redis_url {
        if is_running(url).await {
            return Err(BackupError::Refused(
                "Redis is running at REDIS_URL; stop it first (it would overwrite the restored files on shutdown)".into(),
            ));
        }
    }
    let layout = &opts.layout;
    if kind == BackupKind::RedisAof && !layout.appendonly {
        return Err(BackupError::Refused(
            "an AOF backup needs `appendonly yes`; restore an RDB backup (--kind rdb) or enable appendonly".into(),
        ));
    }
    std::fs::create_dir_all(&layout.dir)
        .map_err(|e| BackupError::io(format!("creating {}", layout.dir.display()), e))?;
    let staged = Scratch::new(&layout.dir, "restore");
    write_plaintext(dest, &manifest, staged.path(), true).await?;
    let installed = install(kind, layout, staged.path())?;
    drop(staged);
    let owner = Owner::of(&layout.dir)?;
    for (path, mode) in &installed {
        give(path, owner, *mode)?;
    }
    readable_by(owner, &installed)?;
    let keys_loaded = if opts.check_keys {
        let loaded = count_keys_with_private_server(layout, Some(owner)).await?;
        if let (Some(expected), true) = (manifest.key_count, manifest.key_count_exact) {
            if loaded != expected {
                return Err(manifest.corrupt(format!(
                    "Redis loaded {loaded} keys; the manifest says {expected}"
                )));
            }
        }
        Some(loaded)
    } else {
        None
    };
    Ok(RedisRestored {
        manifest,
        keys_loaded,
    })
}

/// Moves `path` aside if it exists; returns its mode.
fn set_aside(path: &Path) -> Result<Option<u32>, BackupError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(None);
    };
    let aside = PathBuf::from(format!(
        "{}.replaced-{}",
        path.display(),
        chrono::Utc::now().format("%Y%m%d%H%M%S")
    ));
    std::fs::rename(path, &aside)
        .map_err(|e| BackupError::io(format!("moving {} aside", path.display()), e))?;
    tracing::info!(from = %path.display(), to = %aside.display(), "kept the replaced files");
    Ok(Some(meta.mode() & 0o7777))
}

/// The mode of files restored where none was replaced.
const FILE_MODE: u32 = 0o640;
/// The mode of a restored AOF directory where none was replaced.
const DIR_MODE: u32 = 0o750;

/// Installs the staged backup; returns every path it wrote, with the mode
/// it must have (that of what it replaced).
fn install(
    kind: BackupKind,
    layout: &RedisLayout,
    staged: &Path,
) -> Result<Vec<(PathBuf, u32)>, BackupError> {
    let io = |what: String| move |e: std::io::Error| BackupError::io(what, e);
    let aof_dir = layout.dir.join(&layout.appenddirname);
    let mut installed = Vec::new();
    match kind {
        BackupKind::RedisRdb => {
            let rdb = layout.dir.join(&layout.dbfilename);
            let file_mode = set_aside(&rdb)?.unwrap_or(FILE_MODE);
            if layout.appendonly {
                let dir_mode = set_aside(&aof_dir)?.unwrap_or(DIR_MODE);
                std::fs::create_dir_all(&aof_dir)
                    .map_err(io(format!("creating {}", aof_dir.display())))?;
                installed.push((aof_dir.clone(), dir_mode));
                let base = aof_dir.join(format!("{}.1.base.rdb", layout.appendfilename));
                std::fs::copy(staged, &base).map_err(io(format!("writing {}", base.display())))?;
                let manifest = aof_dir.join(format!("{}.manifest", layout.appendfilename));
                std::fs::write(
                    &manifest,
                    format!("file {}.1.base.rdb seq 1 type b\n", layout.appendfilename),
                )
                .map_err(io("writing the AOF manifest".into()))?;
                installed.extend([(base, file_mode), (manifest, file_mode)]);
            }
            std::fs::rename(staged, &rdb).map_err(io(format!("writing {}", rdb.display())))?;
            installed.push((rdb, file_mode));
        }
        BackupKind::RedisAof => {
            let dir_mode = set_aside(&aof_dir)?.unwrap_or(DIR_MODE);
            unpack_aof(staged, layout)?;
            installed.push((aof_dir.clone(), dir_mode));
            for entry in
                std::fs::read_dir(&aof_dir).map_err(io(format!("listing {}", aof_dir.display())))?
            {
                let entry = entry.map_err(io(format!("listing {}", aof_dir.display())))?;
                installed.push((entry.path(), FILE_MODE));
            }
        }
        BackupKind::Postgres
        | BackupKind::PostgresPhysical
        | BackupKind::WalSegment
        | BackupKind::Sqlite => {
            return Err(BackupError::Config(format!("{kind} is not a Redis backup")))
        }
    }
    Ok(installed)
}

/// Gives `path` to `owner` (when this process may) with `mode`.
fn give(path: &Path, owner: Owner, mode: u32) -> Result<(), BackupError> {
    let me = Owner::current()?;
    if me.uid == 0 && (owner.uid, owner.gid) != (me.uid, me.gid) {
        std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid)).map_err(|e| {
            BackupError::io(format!("giving {} to uid {}", path.display(), owner.uid), e)
        })?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BackupError::io(format!("setting the mode of {}", path.display()), e))
}

/// Refuses, with the command that mends it, when the data directory's
/// owner cannot read a restored file.
fn readable_by(owner: Owner, installed: &[(PathBuf, u32)]) -> Result<(), BackupError> {
    let me = Owner::current()?;
    if me.uid != 0 || owner.uid == 0 {
        return Ok(());
    }
    for (path, _) in installed {
        let flag = if path.is_dir() { "-x" } else { "-r" };
        let readable = Command::new("test")
            .arg(flag)
            .arg(path)
            .uid(owner.uid)
            .gid(owner.gid)
            .status()
            .map_err(BackupError::cannot_start("test"))?;
        if !readable.success() {
            return Err(BackupError::Refused(format!(
                "uid {} (the owner of the Redis data directory) cannot read {}; run \
                 `chown -R {}:{} {}` and check the modes of the directories above it",
                owner.uid,
                path.display(),
                owner.uid,
                owner.gid,
                path.display()
            )));
        }
    }
    Ok(())
}

/// Extracts an AOF archive into the layout's (new) AOF directory. Only
/// plain file names are accepted: nothing may land outside the directory.
pub fn unpack_aof(archive_path: &Path, layout: &RedisLayout) -> Result<(), BackupError> {
    let io = |what: String| move |e: std::io::Error| BackupError::io(what, e);
    let aof_dir = layout.dir.join(&layout.appenddirname);
    std::fs::create_dir_all(&aof_dir).map_err(io(format!("creating {}", aof_dir.display())))?;
    let file = std::fs::File::open(archive_path).map_err(io("reading the archive".into()))?;
    let mut archive = tar::Archive::new(file);
    for entry in archive
        .entries()
        .map_err(io("reading the archive".into()))?
    {
        let mut entry = entry.map_err(io("reading the archive".into()))?;
        let name = entry
            .path()
            .map_err(io("reading the archive".into()))?
            .into_owned();
        let Some(file_name) = name.file_name().filter(|n| Path::new(n) == name.as_path()) else {
            return Err(BackupError::Io(format!(
                "the archive holds an unexpected path {}",
                name.display()
            )));
        };
        entry
            .unpack(aof_dir.join(file_name))
            .map_err(io(format!("extracting {}", name.display())))?;
    }
    Ok(())
}

/// Starts redis-server on the restored files (loopback, a free port, no
/// saving), as `owner` when given (and this process is root), reads the
/// key count, and shuts it down without saving.
pub async fn count_keys_with_private_server(
    layout: &RedisLayout,
    owner: Option<Owner>,
) -> Result<u64, BackupError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BackupError::io("finding a free port", e))?;
    let mut server = Command::new("redis-server");
    if let Some(owner) = owner.filter(|o| o.uid != 0) {
        if Owner::current()?.uid == 0 {
            server.uid(owner.uid).gid(owner.gid);
        }
    }
    let mut child = server
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
        .arg("--dir")
        .arg(&layout.dir)
        .arg("--dbfilename")
        .arg(&layout.dbfilename)
        .arg("--appendonly")
        .arg(if layout.appendonly { "yes" } else { "no" })
        .arg("--appenddirname")
        .arg(&layout.appenddirname)
        .arg("--appendfilename")
        .arg(&layout.appendfilename)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(BackupError::cannot_start("redis-server"))?;
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let counted = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Err(BackupError::Tool {
                tool: "redis-server",
                detail: format!("exited with {status} while loading the restored files"),
            });
        }
        if let Ok(mut admin) = RedisAdmin::connect(&url).await {
            if let Ok(p) = admin.info("persistence").await {
                if p.get("loading").map(String::as_str) == Some("0") {
                    break admin.key_count().await;
                }
            }
        }
        if Instant::now() > deadline {
            break Err(BackupError::Tool {
                tool: "redis-server",
                detail: "did not finish loading in 120 s".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    counted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_layout_from_redis_conf() {
        let l = RedisLayout::from_conf(
            "# c\ndir /var/lib/redis\nappendonly yes\nappenddirname \"aof\"\ndbfilename x.rdb\n",
        );
        assert_eq!(l.dir, PathBuf::from("/var/lib/redis"));
        assert!(l.appendonly);
        assert_eq!(
            (l.appenddirname.as_str(), l.dbfilename.as_str()),
            ("aof", "x.rdb")
        );
        assert_eq!(l.appendfilename, "appendonly.aof");
    }
}
