//! Redis backups and restores against private redis-servers.

use crate::processes::{backup_script, clean_command, succeeded, BIN};
use mailqueue_testkit::{system_user, GcsEmulator, RedisServer, TempDir};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output};

#[derive(Clone)]
struct RedisOps {
    dir: std::sync::Arc<TempDir>,
    redis_url: String,
}

impl RedisOps {
    fn new(redis: &RedisServer) -> Self {
        Self {
            dir: std::sync::Arc::new(TempDir::new("redis-backup")),
            redis_url: redis.url(),
        }
    }

    /// `command` in this Redis's and backup directory's environment.
    fn with_env(&self, mut command: Command) -> Command {
        command
            .env("REDIS_URL", &self.redis_url)
            .env("MAILQUEUE_BACKUP_DIR", self.dir.path().join("backups"))
            .env("MAILQUEUE_BACKUP_LOCK_DIR", self.dir.path().join("locks"));
        command
    }

    fn command(&self, program: &str) -> Command {
        self.with_env(clean_command(program))
    }

    /// One of the guide's scripts, with this build as its binary.
    fn script_command(&self, name: &str) -> Command {
        self.with_env(backup_script(name))
    }

    fn script(&self, name: &str, args: &[&str]) -> Output {
        self.script_command(name).args(args).output().unwrap()
    }

    fn bin(&self, args: &[&str]) -> Output {
        self.command(BIN).args(args).output().unwrap()
    }

    fn catalog(&self) -> Vec<Value> {
        let out = self.bin(&["backups", "list", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn ok(out: Output) -> String {
    succeeded(out, "the command")
}

/// A redis.conf for a stopped Redis living in `dir`, written beside it.
fn write_conf(dir: &std::path::Path, appendonly: bool) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.with_extension("conf");
    std::fs::write(
        &path,
        format!(
            "dir {}\nappendonly {}\n",
            dir.display(),
            if appendonly { "yes" } else { "no" }
        ),
    )
    .unwrap();
    path
}

#[test]
fn an_rdb_backup_restores_into_an_appendonly_redis() {
    let mut redis = RedisServer::start(false);
    redis.fill(500);
    let ops = RedisOps::new(&redis);
    ok(ops.script("redis-backup.sh", &["-m", "rdb"]));
    let catalog = ops.catalog();
    assert_eq!(catalog.len(), 1);
    let m = &catalog[0];
    assert_eq!(m["kind"], "redis_rdb");
    assert_eq!(m["key_count"], 500);
    assert_eq!(m["key_count_exact"], true);
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let object = m["object"].as_str().unwrap();
    assert!(
        object.starts_with(&format!("redis/{day}/redis_rdb_")) && object.ends_with(".rdb.gz"),
        "{object}"
    );
    let verified = ok(ops.bin(&["verify"]));
    assert!(
        verified.contains("redis_rdb redis_rdb_") && verified.contains(": OK"),
        "{verified}"
    );
    // A target Redis with appendonly yes would ignore a bare dump.rdb.
    let target = TempDir::new("redis-target");
    let target_conf = write_conf(&target.path().join("data"), true);
    let refused = ops
        .script_command("redis-restore.sh")
        .env("REDIS_CONF", &target_conf)
        .args(["-s", "file", "latest"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "the source Redis still answers at REDIS_URL"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop it first"));
    redis.stop();
    let said = ok(ops
        .script_command("redis-restore.sh")
        .env("REDIS_CONF", &target_conf)
        .args(["-s", "file", "latest"])
        .output()
        .unwrap());
    assert!(said.contains("loaded 500 keys"), "{said}");
    let restored = RedisServer::start_on(&target.path().join("data"), true);
    assert_eq!(
        restored.dbsize(),
        500,
        "Redis with appendonly yes loads the restored snapshot"
    );
    assert_eq!(restored.cli(&["GET", "key:42"]).trim(), "value-42");
}

#[test]
fn an_rdb_backup_goes_to_gcs_and_restores_from_it() {
    let mut redis = RedisServer::start(false);
    redis.fill(200);
    let gcs = GcsEmulator::start("mailqueue-redis");
    let ops = RedisOps::new(&redis);
    let on_gcs = |mut c: Command| {
        c.env("MAILQUEUE_BACKUP_GCS_URL", "gs://mailqueue-redis/cache");
        for (k, v) in gcs.env() {
            c.env(k, v);
        }
        c
    };
    ok(on_gcs(ops.script_command("redis-backup.sh"))
        .args(["-m", "rdb", "-u", "gcs"])
        .output()
        .unwrap());
    let listed = ok(on_gcs(ops.command(BIN))
        .args(["backups", "list", "--json", "-s", "gcs"])
        .output()
        .unwrap());
    let catalog: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(catalog.len(), 1, "{listed}");
    assert_eq!(catalog[0]["key_count"], 200);
    let object = catalog[0]["object"].as_str().unwrap();
    assert!(
        gcs.list("cache/redis/")
            .contains(&format!("cache/{object}")),
        "{object}"
    );
    assert!(
        !ops.dir.path().join("backups").exists(),
        "nothing lands in the local directory"
    );
    redis.stop();
    let target = TempDir::new("redis-target");
    let conf = write_conf(&target.path().join("data"), false);
    let said = ok(on_gcs(ops.script_command("redis-restore.sh"))
        .env("REDIS_CONF", &conf)
        .args(["-s", "gcs", "latest"])
        .output()
        .unwrap());
    assert!(said.contains("loaded 200 keys"), "{said}");
    let restored = RedisServer::start_on(&target.path().join("data"), false);
    assert_eq!(restored.dbsize(), 200);
    assert_eq!(restored.cli(&["GET", "key:7"]).trim(), "value-7");
}

#[test]
fn the_replication_stream_gives_the_same_snapshot() {
    let redis = RedisServer::start(false);
    redis.fill(300);
    let ops = RedisOps::new(&redis);
    ok(ops.bin(&[
        "backup",
        "redis",
        "-m",
        "rdb",
        "--via-replication",
        "-c",
        "zstd",
    ]));
    let m = &ops.catalog()[0];
    assert_eq!(m["key_count"], 300);
    assert!(m["object"].as_str().unwrap().ends_with(".rdb.zst"));
    assert!(ok(ops.bin(&["verify"])).contains(": OK"));
    let target = TempDir::new("redis-target");
    let dir = target.path().join("data");
    restore_latest(ops, "rdb", &write_conf(&dir, false));
    let restored = RedisServer::start_on(&dir, false);
    assert_eq!(restored.dbsize(), 300);
}

#[test]
fn aof_backups_copy_the_multi_part_files_and_resume_rewrites() {
    let redis = RedisServer::start(true);
    redis.fill(400);
    redis.cli(&["CONFIG", "SET", "auto-aof-rewrite-percentage", "77"]);
    let ops = RedisOps::new(&redis);
    ok(ops.script("redis-backup.sh", &["-m", "both"]));
    let kinds: Vec<String> = ops
        .catalog()
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds.contains(&"redis_rdb".to_string()) && kinds.contains(&"redis_aof".to_string()));
    assert!(
        redis
            .cli(&["CONFIG", "GET", "auto-aof-rewrite-percentage"])
            .contains("77"),
        "automatic rewrites are resumed with their setting"
    );
    let verified = ok(ops.bin(&["verify"]));
    assert_eq!(verified.matches(": OK").count(), 2, "{verified}");
    let target = TempDir::new("redis-target");
    let dir = target.path().join("data");
    let conf = write_conf(&dir, true);
    let ops = RedisOps {
        redis_url: "redis://127.0.0.1:9".into(),
        ..ops
    };
    let said = restore_latest(ops.clone(), "aof", &conf);
    assert!(said.contains("loaded 400 keys"), "{said}");
    let restored = RedisServer::start_on(&dir, true);
    assert_eq!(restored.dbsize(), 400);
    // An AOF backup cannot go into a Redis that ignores AOF files.
    let plain = write_conf(&target.path().join("plain"), false);
    let out = ops.bin(&[
        "restore",
        "redis",
        "latest",
        "--kind",
        "aof",
        "--redis-conf",
        plain.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs `appendonly yes`"));
}

#[test]
fn an_aof_backup_of_an_rdb_only_redis_is_refused() {
    let redis = RedisServer::start(false);
    let ops = RedisOps::new(&redis);
    let out = ops.script("redis-backup.sh", &["-m", "aof"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AOF backups need `appendonly yes`"));
    assert!(ops.catalog().is_empty());
    let out = ops.script("redis-backup.sh", &["-u", "s3"]);
    assert_eq!(out.status.code(), Some(2), "-m is required");
}

/// As the guide runs it (as root), a restore into the data directory of a
/// Redis that runs as its own user leaves files that user can load, RDB
/// and AOF alike; the key check loads them as that user.
#[test]
fn a_restore_as_root_leaves_files_the_redis_user_can_load() {
    let Some((uid, gid)) = system_user("redis") else {
        eprintln!("skipped: needs root and a `redis` user");
        return;
    };
    for appendonly in [false, true] {
        let home = TempDir::new("redis-owned");
        let data = home.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
        let mut redis = RedisServer::start_on_as(&data, appendonly, Some((uid, gid)));
        redis.fill(300);
        let ops = RedisOps::new(&redis);
        let mode = if appendonly { "aof" } else { "rdb" };
        ok(ops.bin(&["backup", "redis", "-m", mode]));
        redis.stop();
        for entry in std::fs::read_dir(&data).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
        let said = restore_latest(ops, mode, &write_conf(&data, appendonly));
        assert!(said.contains("loaded 300 keys"), "{mode}: {said}");
        for entry in walk(&data) {
            let meta = std::fs::metadata(&entry).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{}", entry.display());
        }
        let restored = RedisServer::start_on_as(&data, appendonly, Some((uid, gid)));
        assert_eq!(
            restored.dbsize(),
            300,
            "{mode}: Redis loads what was restored"
        );
    }
}

/// Every file and directory under `dir` (not `dir` itself).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// `restore redis latest --kind KIND` for the stopped Redis `conf`
/// describes (REDIS_URL names no server).
fn restore_latest(ops: RedisOps, kind: &str, conf: &std::path::Path) -> String {
    let ops = RedisOps {
        redis_url: "redis://127.0.0.1:9".into(),
        ..ops
    };
    ok(ops.bin(&[
        "restore",
        "redis",
        "latest",
        "--kind",
        kind,
        "--redis-conf",
        conf.to_str().unwrap(),
    ]))
}
