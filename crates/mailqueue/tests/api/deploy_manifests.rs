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
