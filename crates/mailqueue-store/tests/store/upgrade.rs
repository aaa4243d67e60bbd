//! A database made by the previous mailqueue (migrations up to 0010), with
//! rows in the forms that migration 0011 changes, read by the current store:
//! a rotated webhook keeps its previous secret, and suppressions that
//! differ only in case become one entry in lower case (the oldest kept).

use crate::support::*;
use chrono::Duration;
use mailqueue_core::store::WebhookStore;
use mailqueue_core::suppression::{SuppressionQuery, SuppressionStore};
use mailqueue_core::webhooks::{PreviousSecret, SigningSecret};
use mailqueue_core::{SuppressionId, WebhookId};
use mailqueue_store::{PgSettings, PgStore, SqliteSettings, SqliteStore};
use mailqueue_testkit::{StoreKind, TempDir, TestDatabase};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::Connection;
use std::borrow::Cow;

macro_rules! before_0011 {
    ($dialect:literal) => {
        [
            (
                1,
                include_str!(concat!("../../migrations/", $dialect, "/0001_initial.sql")),
            ),
            (
                2,
                include_str!(concat!(
                    "../../migrations/",
                    $dialect,
                    "/0002_api_key_permissions.sql"
                )),
            ),
            (
                3,
                include_str!(concat!(
                    "../../migrations/",
                    $dialect,
                    "/0003_maintenance_leases.sql"
                )),
            ),
            (
                5,
                include_str!(concat!(
                    "../../migrations/",
                    $dialect,
                    "/0005_events_webhooks_suppressions.sql"
                )),
            ),
            (
                6,
                include_str!(concat!(
                    "../../migrations/",
                    $dialect,
                    "/0006_retention_and_hot_indexes.sql"
                )),
            ),
            (
                7,
                include_str!(concat!(
                    "../../migrations/",
                    $dialect,
                    "/0007_webhook_claim_indexes.sql"
                )),
            ),
            (
                8,
                include_str!(concat!(
                    "../../migrations/",
                    $dialect,
                    "/0008_drop_webhook_due_index.sql"
                )),
            ),
            (
                9,
                include_str!(concat!(
                    "../../migrations/",
                    $dialect,
                    "/0009_webhook_leases_unindexed.sql"
                )),
            ),
            (
                10,
                include_str!(concat!(
                    "../../migrations/",
                    $dialect,
                    "/0010_webhook_attempts_on_failure.sql"
                )),
            ),
        ]
    };
}

/// The migrations as the previous release ran them (descriptions are not
/// checked, only versions and checksums).
fn previous_schema(sources: [(i64, &'static str); 9], descriptions: &[&'static str]) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            sources
                .iter()
                .zip(descriptions)
                .map(|(&(version, sql), &description)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

const DESCRIPTIONS: [&str; 9] = [
    "initial",
    "api key permissions",
    "maintenance leases",
    "events, webhooks and suppressions",
    "retention and hot indexes",
    "webhook claim indexes",
    "drop the webhook due index",
    "webhook leases without an index",
    "webhook attempt rows only for tries that did not deliver",
];

pub async fn rows_of_the_previous_schema_read_as_the_current_store_has_them(kind: StoreKind) {
    let webhook = WebhookId::generate(t0());
    let old_secret = SigningSecret::from_key(&[1; 24]);
    let until = t0() + Duration::hours(24);
    let (older, newer, other) = (
        SuppressionId::generate(t0()),
        SuppressionId::generate(t0() + Duration::seconds(1)),
        SuppressionId::generate(t0() + Duration::seconds(2)),
    );
    let _keep: (Option<TempDir>, Option<TestDatabase>);
    let store: Box<dyn Both> = match kind {
        StoreKind::Sqlite => {
            let dir = TempDir::new("upgrade");
            let path = dir.path().join("mailqueue.db");
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            previous_schema(before_0011!("sqlite"), &DESCRIPTIONS)
                .run(&mut conn)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO webhooks (id, endpoint, events, status, signing_secret, \
                 previous_secret, previous_secret_until, created_at) \
                 VALUES ($1, 'https://hooks.example.com/', '[\"email.sent\"]', 'enabled', $2, $3, $4, $5)",
            )
            .bind(webhook.to_string())
            .bind(SigningSecret::from_key(&[2; 24]).expose())
            .bind(old_secret.expose())
            .bind(until.timestamp_millis())
            .bind(t0().timestamp_millis())
            .execute(&mut conn)
            .await
            .unwrap();
            for (id, email, at) in [
                (older, "Gone@Example.com", 0),
                (newer, "gone@example.com", 1),
                (other, "Other@x.io", 2),
            ] {
                sqlx::query(
                    "INSERT INTO suppressions (id, email, origin, created_at) VALUES ($1, $2, 'manual', $3)",
                )
                .bind(id.to_string())
                .bind(email)
                .bind((t0() + Duration::seconds(at)).timestamp_millis())
                .execute(&mut conn)
                .await
                .unwrap();
            }
            conn.close().await.unwrap();
            let store = SqliteStore::open(&SqliteSettings { path, readers: 1 })
                .await
                .unwrap();
            _keep = (Some(dir), None);
            Box::new(store)
        }
        StoreKind::Postgres => {
            let db = TestDatabase::create().await;
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            previous_schema(before_0011!("postgres"), &DESCRIPTIONS)
                .run(&mut conn)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO webhooks (id, endpoint, events, status, signing_secret, \
                 previous_secret, previous_secret_until, created_at) \
                 VALUES ($1, 'https://hooks.example.com/', ARRAY['email.sent'], 'enabled', $2, $3, $4, $5)",
            )
            .bind(webhook.0)
            .bind(SigningSecret::from_key(&[2; 24]).expose())
            .bind(old_secret.expose())
            .bind(until)
            .bind(t0())
            .execute(&mut conn)
            .await
            .unwrap();
            for (id, email, at) in [
                (older, "Gone@Example.com", 0),
                (newer, "gone@example.com", 1),
                (other, "Other@x.io", 2),
            ] {
                sqlx::query(
                    "INSERT INTO suppressions (id, email, origin, created_at) VALUES ($1, $2, 'manual', $3)",
                )
                .bind(id.0)
                .bind(email)
                .bind(t0() + Duration::seconds(at))
                .execute(&mut conn)
                .await
                .unwrap();
            }
            conn.close().await.unwrap();
            let store = PgStore::connect(&PgSettings {
                url: db.url.clone(),
                max_connections: 2,
                acquire_timeout: std::time::Duration::from_secs(5),
            })
            .await
            .unwrap();
            store.migrate().await.unwrap();
            _keep = (None, Some(db));
            Box::new(store)
        }
    };
    let w = store.get_webhook(webhook).await.unwrap().unwrap();
    assert_eq!(
        w.previous_secrets,
        [PreviousSecret {
            secret: old_secret,
            until
        }]
    );
    assert_eq!(w.signing_secrets(t0()).len(), 2);
    let listed = store
        .list_suppressions(&SuppressionQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let entries: Vec<(SuppressionId, &str)> =
        listed.iter().map(|s| (s.id, s.email.as_str())).collect();
    assert_eq!(
        entries,
        [(other, "other@x.io"), (older, "gone@example.com")],
        "newest first, one entry per address"
    );
}

trait Both: WebhookStore + SuppressionStore {}
impl<T: WebhookStore + SuppressionStore> Both for T {}
