//! The Kubernetes manifests under deploy/kubernetes: valid against
//! Kubernetes' schemas (kubernetes-validate, strict), and consistent with
//! mailqueue itself: every setting they give exists, the roles exist, and a
//! pod gets longer to stop than mailqueue takes to drain.

use mailqueue::settings::find_by_env;
use std::path::PathBuf;
use std::process::Command;

fn manifests() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/kubernetes"
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

fn validate(files: &[PathBuf]) -> std::process::Output {
    Command::new("kubernetes-validate")
        .arg("--strict")
        .arg("--quiet")
        .args(files)
        .output()
        .expect("kubernetes-validate runs (pip install kubernetes-validate)")
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas() {
    let out = validate(&manifests());
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_manifest_with_a_misspelt_field_is_refused() {
    let dir = mailqueue_testkit::TempDir::new("k8s");
    let broken = dir.path().join("api.yaml");
    let text = std::fs::read_to_string(&manifests()[0]).unwrap();
    std::fs::write(
        &broken,
        text.replacen("containerPort:", "containerPorts:", 1),
    )
    .unwrap();
    assert!(
        !validate(&[broken]).status.success(),
        "strict validation catches it"
    );
}

/// The manifests' facts that must agree with mailqueue, read with PyYAML
/// (which kubernetes-validate brings): settings, roles, grace periods.
#[test]
fn the_manifests_agree_with_mailqueue() {
    let script = r#"
import sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
config = next(d for d in docs if d['kind'] == 'ConfigMap' and d['metadata']['name'] == 'mail-queue-config')['data']
secret = next(d for d in docs if d['kind'] == 'Secret' and d['metadata']['name'] == 'mail-queue-secrets')['stringData']
for key in list(config) + list(secret):
    print('setting', key)
for d in docs:
    if d['kind'] == 'Deployment':
        spec = d['spec']['template']['spec']
        args = spec['containers'][0]['args']
        print('deployment', d['metadata']['name'], args[args.index('--role') + 1],
              spec['terminationGracePeriodSeconds'])
print('grace', config['MAILQUEUE_SHUTDOWN_GRACE_SECONDS'])
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(manifests())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts = String::from_utf8(out.stdout).unwrap();
    let grace: u64 = facts
        .lines()
        .find_map(|l| l.strip_prefix("grace "))
        .unwrap()
        .parse()
        .unwrap();
    let mut roles = Vec::new();
    for line in facts.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["setting", key] => assert!(find_by_env(key).is_some(), "{key} is not a setting"),
            ["deployment", name, role, termination] => {
                roles.push((name.to_string(), role.to_string()));
                let termination: u64 = termination.parse().unwrap();
                assert!(
                    termination > grace,
                    "{name}: {termination}s to stop, mailqueue drains for {grace}s"
                );
            }
            _ => {}
        }
    }
    roles.sort();
    assert_eq!(
        roles,
        [
            ("mail-queue-api".to_string(), "api".to_string()),
            ("mail-queue-worker".to_string(), "worker".to_string())
        ]
    );
}
