//! The embedded store's backup, taken while the server runs and writes.

use crate::processes::Embedded;
use serde_json::json;

async fn count(base: &str, key: &str) -> usize {
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/emails?limit=100"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_embedded_store_backs_up_while_serving_and_restores() {
    let e = Embedded::new("embedded-backup");
    let key = e.api_key("b");
    let mut server = e.serve().await;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let post = |subject: String| {
        client
            .post(format!("{base}/v1/emails"))
            .bearer_auth(&key)
            .json(&json!({"from": "a@acme.test", "to": "b@example.com", "subject": subject, "text": "t",
                          "scheduled_at": "in 1 day"}))
            .send()
    };
    for i in 0..20 {
        assert_eq!(post(format!("before {i}")).await.unwrap().status(), 202);
    }
    // Writes keep coming while the backup runs.
    let writer = {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                let r = client
                    .post(format!("{base}/v1/emails"))
                    .bearer_auth(&key)
                    .json(&json!({"from": "a@acme.test", "to": "b@example.com", "subject": format!("during {i}"),
                                  "text": "t", "scheduled_at": "in 1 day"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
            }
        })
    };
    let said = e.ok(&["backup", "-c", "zstd"]);
    assert!(said.contains("/sqlite/"), "{said}");
    writer.await.unwrap();
    let catalog: Vec<serde_json::Value> =
        serde_json::from_str(&e.ok(&["backups", "list", "--json"])).unwrap();
    assert_eq!(catalog[0]["kind"], "sqlite");
    let backed_up = catalog[0]["row_counts"]["emails"].as_u64().unwrap();
    assert!((20..=50).contains(&backed_up), "{backed_up}");
    assert!(e.ok(&["verify"]).contains("sqlite mailqueue_"));
    // A running server keeps its file.
    let out = e.run(&["restore", "sqlite", "latest", "--force"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server is running"));
    server.terminate();
    let out = e.run(&["restore", "sqlite", "latest"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --force"));
    e.ok(&["restore", "sqlite", "latest", "--force"]);
    let server = e.serve().await;
    assert_eq!(
        count(&server.base, &key).await as u64,
        backed_up,
        "the restored store has exactly the backed-up emails"
    );
}
