//! The shipped Prometheus rules load, and their unit tests pass (promtool).

use std::process::Command;

#[test]
fn the_backup_wal_and_drill_alert_rules_pass_their_promtool_unit_tests() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/prometheus");
    for args in [
        ["check", "rules", "mailqueue-backup-alerts.yml"],
        ["test", "rules", "mailqueue-backup-alerts.test.yml"],
        ["check", "rules", "mailqueue-dr-alerts.yml"],
        ["test", "rules", "mailqueue-dr-alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("promtool runs (apt install prometheus)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
