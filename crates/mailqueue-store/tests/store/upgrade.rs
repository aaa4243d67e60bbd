//! A database made by the previous mailqueue (migrations up to 0010), with
//! rows in the forms that migration 0011 changes, read by the current store:
//! a rotated webhook keeps its previous secret, and suppressions that
//! differ only in case become one entry in lower case (the oldest kept).

use crate::older::upgraded;
use crate::support::*;
use chrono::Duration;
use mailqueue_core::suppression::SuppressionQuery;
use mailqueue_core::webhooks::{PreviousSecret, SigningSecret};
use mailqueue_core::{SuppressionId, WebhookId};
use mailqueue_testkit::StoreKind;

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

/// A rotated webhook and suppressions that differ only in case, in each
/// dialect's column types.
const WEBHOOK: &str = "INSERT INTO webhooks (id, endpoint, events, status, signing_secret, \
     previous_secret, previous_secret_until, created_at) \
     VALUES ($1, 'https://hooks.example.com/', {events}, 'enabled', $2, $3, $4, $5)";
const SUPPRESSION: &str =
    "INSERT INTO suppressions (id, email, origin, created_at) VALUES ($1, $2, 'manual', $3)";

pub async fn rows_of_the_previous_schema_read_as_the_current_store_has_them(kind: StoreKind) {
    let webhook = WebhookId::generate(t0());
    let signing = SigningSecret::from_key(&[2; 24]);
    let old_secret = SigningSecret::from_key(&[1; 24]);
    let until = t0() + Duration::hours(24);
    let (older, newer, other) = (
        SuppressionId::generate(t0()),
        SuppressionId::generate(t0() + Duration::seconds(1)),
        SuppressionId::generate(t0() + Duration::seconds(2)),
    );
    let suppressions = [
        (older, "Gone@Example.com", 0),
        (newer, "gone@example.com", 1),
        (other, "Other@x.io", 2),
    ];
    let old = upgraded(
        kind,
        &before_0011!("sqlite"),
        &before_0011!("postgres"),
        async |conn| {
            sqlx::query(&WEBHOOK.replace("{events}", "'[\"email.sent\"]'"))
                .bind(webhook.to_string())
                .bind(signing.expose())
                .bind(old_secret.expose())
                .bind(until.timestamp_millis())
                .bind(t0().timestamp_millis())
                .execute(&mut *conn)
                .await
                .unwrap();
            for (id, email, at) in suppressions {
                sqlx::query(SUPPRESSION)
                    .bind(id.to_string())
                    .bind(email)
                    .bind((t0() + Duration::seconds(at)).timestamp_millis())
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
        },
        async |conn| {
            sqlx::query(&WEBHOOK.replace("{events}", "ARRAY['email.sent']"))
                .bind(webhook.0)
                .bind(signing.expose())
                .bind(old_secret.expose())
                .bind(until)
                .bind(t0())
                .execute(&mut *conn)
                .await
                .unwrap();
            for (id, email, at) in suppressions {
                sqlx::query(SUPPRESSION)
                    .bind(id.0)
                    .bind(email)
                    .bind(t0() + Duration::seconds(at))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
        },
    )
    .await;
    let store = &old.store;
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

macro_rules! before_0012 {
    ($dialect:literal) => {{
        let mut older = before_0011!($dialect).to_vec();
        older.push((
            11,
            include_str!(concat!(
                "../../migrations/",
                $dialect,
                "/0011_second_fault_round.sql"
            )),
        ));
        older
    }};
}

/// An email in each dialect's column types, with its content.
const EMAIL: &str = "INSERT INTO emails (id, status, message_id, created_at, updated_at, \
     next_attempt_at, attempts, first_attempt_at, last_attempt_at, lease_holder, lease_expires_at) \
     VALUES ($1, $2, '<m@acme.test>', $3, $3, $4, $5, $3, $3, $6, $7)";
const CONTENT: &str = "INSERT INTO email_contents (email_id, content) VALUES ($1, $2)";
const BODY: &str =
    r#"{"from": "a@acme.test", "to": ["b@example.com"], "subject": "s", "text": "t"}"#;

/// Before 0012 a claim counted its attempt. An email being sent (its
/// second attempt under way) and one waiting for its second attempt keep
/// their history's numbers: the attempt cut short is number 2, and so is
/// the next claim's.
pub async fn attempts_claimed_before_0012_keep_their_numbers(kind: StoreKind) {
    let sending = mailqueue_core::EmailId::generate(t0());
    let waiting = mailqueue_core::EmailId::generate(t0() + Duration::seconds(1));
    // (id, status, next attempt, attempts, lease holder, lease expiry)
    let rows = [
        (sending, "sending", None, 2, Some("old"), Some(t0())),
        (waiting, "queued", Some(t0()), 1, None, None),
    ];
    let old = upgraded(
        kind,
        &before_0012!("sqlite"),
        &before_0012!("postgres"),
        async |conn| {
            let ms = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_millis());
            for (id, status, next, attempts, holder, expiry) in rows {
                sqlx::query(EMAIL)
                    .bind(id.to_string())
                    .bind(status)
                    .bind(t0().timestamp_millis())
                    .bind(ms(next))
                    .bind(attempts)
                    .bind(holder)
                    .bind(ms(expiry))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                sqlx::query(CONTENT)
                    .bind(id.to_string())
                    .bind(BODY)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
        },
        async |conn| {
            for (id, status, next, attempts, holder, expiry) in rows {
                sqlx::query(EMAIL)
                    .bind(id.0)
                    .bind(status)
                    .bind(t0())
                    .bind(next)
                    .bind(attempts)
                    .bind(holder)
                    .bind(expiry)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                sqlx::query(&CONTENT.replace("$2", "$2::jsonb"))
                    .bind(id.0)
                    .bind(BODY)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
        },
    )
    .await;
    let store = &old.store;
    let now = t0() + Duration::minutes(10);
    let rescued = store
        .rescue_expired_leases(now, t0() - Duration::days(2))
        .await
        .unwrap();
    assert_eq!(rescued.moved(), 1);
    let attempts = store.list_attempts(sending).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].attempt, 2,
        "the attempt cut short was the second"
    );
    assert_eq!(store.get_email(sending).await.unwrap().unwrap().attempts, 2);
    let claimed = store
        .claim_emails(&[waiting], &claim("new", now))
        .await
        .unwrap();
    assert_eq!((claimed[0].attempt, claimed[0].claim), (2, 2));
}
