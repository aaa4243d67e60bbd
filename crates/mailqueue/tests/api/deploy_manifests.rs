//! Every command the Kubernetes CronJobs run is one the binary accepts
//! (`deployment.rs` validates them against Kubernetes' schemas).

use crate::processes::{clean_command, BIN};

const CRONJOBS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/kubernetes/backup-cronjobs.yaml"
);

/// The `args:` lists of the CronJobs' containers.
fn job_commands(yaml: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in yaml.lines() {
        let trimmed = line.trim();
        if trimmed == "args:" {
            current = Some(Vec::new());
        } else if let (Some(args), Some(item)) = (current.as_mut(), trimmed.strip_prefix("- ")) {
            args.push(item.trim_matches('"').to_string());
        } else if let Some(done) = current.take() {
            commands.push(done);
        }
    }
    commands
}

#[test]
fn every_cronjob_runs_a_command_the_binary_accepts() {
    let yaml = std::fs::read_to_string(CRONJOBS).unwrap();
    let commands = job_commands(&yaml);
    assert!(commands.len() >= 8, "{commands:?}");
    for args in commands {
        let out = clean_command(BIN)
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The cron file's jobs: every one runs a script that exists, and a job
/// that does not run as root never redirects into a file (one it cannot
/// write stops the line before mailqueue starts, and no failure metric is
/// written); its output goes to syslog.
#[test]
fn cron_jobs_of_other_users_log_through_syslog() {
    let cron = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/cron.d/mailqueue-backup"
    ))
    .unwrap();
    let jobs: Vec<Vec<&str>> = cron
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.contains('='))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(jobs.len() >= 8, "{jobs:?}");
    for job in &jobs {
        let (user, command) = (job[5], &job[6..]);
        let script = command[0].replace(
            "/opt/mail-queue",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        );
        assert!(std::path::Path::new(&script).is_file(), "{script}");
        if user != "root" {
            assert!(
                !command.contains(&">>") && !command.contains(&">"),
                "{job:?}"
            );
            assert!(command.contains(&"logger"), "{job:?}");
        }
    }
}
