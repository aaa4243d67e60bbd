//! The command line as an operator meets it: every option described in
//! `--help`, a closed pipe ending a command quietly, a missing backup
//! directory reported rather than created.

use crate::processes::{clean_command, BIN};

const COMMANDS: &[&str] = &[
    "serve",
    "migrate",
    "api-keys create",
    "api-keys list",
    "api-keys revoke",
    "backup postgres",
    "backup redis",
    "backup sqlite",
    "restore postgres",
    "restore redis",
    "restore sqlite",
    "verify",
    "backups list",
    "backups prune",
    "wal-push",
    "wal-fetch",
    "wal-prefetch",
    "wal check",
    "wal prune",
    "dr drill",
];

/// The options (and arguments) of a command's long help with no sentence
/// of their own: what follows them is a list of values or a default.
fn undescribed(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let entry = line.starts_with("  -")
            || line.starts_with("      --")
            || line.starts_with("  <")
            || line.starts_with("  [");
        if !entry || line.contains("--help") {
            continue;
        }
        // Short help puts the sentence on the entry's line, long help on
        // the next, indented.
        let inline = line.trim().contains("  ");
        let next = lines.get(i + 1).copied().unwrap_or("");
        let below = next.starts_with("          ")
            && !next.trim().starts_with("Possible values")
            && !next.trim().starts_with('[');
        if !inline && !below {
            found.push(line.trim().to_string());
        }
    }
    found
}

#[test]
fn every_option_of_every_command_has_a_description() {
    let mut blank = Vec::new();
    for command in COMMANDS {
        let out = clean_command(BIN)
            .args(command.split(' '))
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        let help = String::from_utf8(out.stdout).unwrap();
        for entry in undescribed(&help) {
            blank.push(format!("{command}: {entry}"));
        }
    }
    assert!(blank.is_empty(), "undescribed in --help: {blank:#?}");
}

/// Output piped into a reader that has stopped reading (`wal check | head`)
/// ends the command quietly, as SIGPIPE ends other tools: no panic, no
/// backtrace.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let dir = mailqueue_testkit::TempDir::new("pipe");
    std::fs::create_dir_all(dir.path().join("backups")).unwrap();
    // The reader is gone before the command writes a byte.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = clean_command(BIN)
        .args(["backups", "list"])
        .env("MAILQUEUE_BACKUP_DIR", dir.path().join("backups"))
        .env("RUST_BACKTRACE", "1")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !said.contains("panicked") && !said.contains("backtrace"),
        "{said}"
    );
    assert_eq!(out.status.code(), Some(141), "{said}");
}

/// Listing or pruning a backup directory that is not there says so and
/// creates nothing (an unmounted volume must not look like an empty one).
#[test]
fn listing_a_missing_backup_directory_creates_nothing() {
    let dir = mailqueue_testkit::TempDir::new("no-backups");
    let missing = dir.path().join("backups");
    for args in [
        &["backups", "list"][..],
        &["backups", "prune", "--kind", "postgres"],
    ] {
        let out = clean_command(BIN)
            .args(args)
            .env("MAILQUEUE_BACKUP_DIR", &missing)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("does not exist"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}
