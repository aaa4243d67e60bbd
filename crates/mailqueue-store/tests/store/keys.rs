use crate::support::*;
use chrono::Duration;
use mailqueue_core::api_key::{ApiToken, TokenHash};
use mailqueue_core::store::{
    ApiKeyRecord, IdempotencyBegin, IdempotencyScope, IdempotencyWindow, IdempotentResponse,
    InsertGroup,
};
use mailqueue_core::ApiKeyId;
use mailqueue_testkit::{test_store, StoreKind};

pub async fn api_keys_are_found_by_hash_until_revoked(kind: StoreKind) {
    let s = test_store(kind).await;
    let token = ApiToken::from_random([3; 24]);
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(t0()),
        name: "ci".into(),
        token_prefix: token.display_prefix(),
        created_at: t0(),
        revoked_at: None,
    };
    s.store
        .create_api_key(&record, &token.hash())
        .await
        .unwrap();
    assert_eq!(
        s.store.find_api_key(&token.hash()).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        s.store
            .find_api_key(&TokenHash::of("mq_wrong"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.store.revoke_api_key("nobody", t0()).await.unwrap(), 0);
    assert_eq!(s.store.revoke_api_key("ci", t0()).await.unwrap(), 1);
    assert_eq!(s.store.find_api_key(&token.hash()).await.unwrap(), None);
    let listed = s.store.list_api_keys().await.unwrap();
    assert_eq!(listed[0].revoked_at, Some(t0()));
    let other = ApiKeyRecord {
        id: ApiKeyId::generate(t0()),
        name: "by-id".into(),
        ..record
    };
    let token2 = ApiToken::from_random([4; 24]);
    s.store
        .create_api_key(&other, &token2.hash())
        .await
        .unwrap();
    assert_eq!(
        s.store
            .revoke_api_key(&other.id.to_string(), t0())
            .await
            .unwrap(),
        1
    );
}

fn window(now: chrono::DateTime<chrono::Utc>) -> IdempotencyWindow {
    IdempotencyWindow {
        now,
        stale_before: now - Duration::seconds(60),
        expired_before: now - Duration::hours(24),
    }
}

pub async fn idempotency_keys_follow_their_lifecycle(kind: StoreKind) {
    let s = test_store(kind).await;
    let scope = IdempotencyScope {
        api_key_id: ApiKeyId::generate(t0()),
        key: "order-1".into(),
    };
    let h1 = [1u8; 32];
    let h2 = [2u8; 32];
    let begin = |hash: [u8; 32], now| {
        let store = s.store.clone();
        let scope = scope.clone();
        async move {
            store
                .begin_idempotent_request(&scope, &hash, &window(now))
                .await
                .unwrap()
        }
    };
    assert_eq!(begin(h1, t0()).await, IdempotencyBegin::Started);
    assert_eq!(begin(h1, t0()).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(h2, t0()).await, IdempotencyBegin::Mismatch);
    // The same key of another API key is another key.
    let other = IdempotencyScope {
        api_key_id: ApiKeyId::generate(t0()),
        key: "order-1".into(),
    };
    assert_eq!(
        s.store
            .begin_idempotent_request(&other, &h2, &window(t0()))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    // Completing stores the answer with the emails.
    let e = to_insert(email("idem"), t0());
    s.store
        .insert_emails(&[InsertGroup {
            emails: vec![e],
            idempotency: Some(IdempotentResponse {
                scope: scope.clone(),
                status: 202,
                body: "{\"id\":\"x\"}".into(),
            }),
        }])
        .await
        .unwrap();
    assert_eq!(
        begin(h1, t0() + Duration::hours(1)).await,
        IdempotencyBegin::Replay {
            status: 202,
            body: "{\"id\":\"x\"}".into()
        }
    );
    assert_eq!(
        begin(h2, t0() + Duration::hours(1)).await,
        IdempotencyBegin::Mismatch
    );
    // After 24 hours the key is free again.
    assert_eq!(
        begin(h2, t0() + Duration::hours(25)).await,
        IdempotencyBegin::Started
    );
    // A request that died in progress is taken over after the timeout.
    let dead = IdempotencyScope {
        api_key_id: scope.api_key_id,
        key: "dead".into(),
    };
    let start = |now| {
        let store = s.store.clone();
        let dead = dead.clone();
        async move {
            store
                .begin_idempotent_request(&dead, &h1, &window(now))
                .await
                .unwrap()
        }
    };
    assert_eq!(start(t0()).await, IdempotencyBegin::Started);
    assert_eq!(
        start(t0() + Duration::seconds(30)).await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        start(t0() + Duration::seconds(90)).await,
        IdempotencyBegin::Started
    );
    // Abandoning frees it at once; purging removes old keys.
    s.store.abandon_idempotent_request(&dead).await.unwrap();
    assert_eq!(
        start(t0() + Duration::seconds(91)).await,
        IdempotencyBegin::Started
    );
    let purged = s
        .store
        .purge_idempotency_keys(t0() + Duration::hours(100))
        .await
        .unwrap();
    assert!(purged >= 3, "{purged}");
}
