//! Every option of every command says what it does in `--help`.

use crate::processes::{clean_command, BIN};

const COMMANDS: &[&str] = &[
    "serve", "migrate", "api-keys create", "api-keys list", "api-keys revoke",
    "backup postgres", "backup redis", "backup sqlite", "restore postgres",
    "restore redis", "restore sqlite", "verify", "backups list", "backups prune",
    "wal-push", "wal-fetch", "wal-prefetch", "wal check", "wal prune", "dr drill",
];

/// The options (and arguments) of a command's long help with no sentence
/// of their own: what follows them is a list of values or a default.
fn undescribed(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let entry = line.starts_with("  -") || line.starts_with("      --") || line.starts_with("  <")
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
