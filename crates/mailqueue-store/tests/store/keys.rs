use crate::older::upgraded;
use crate::support::*;
use chrono::Duration;
use mailqueue_core::api_key::{ApiKeyPermission, ApiToken, TokenHash};
use mailqueue_core::store::{
    ApiKeyRecord, ApiKeySelector, IdempotencyBegin, IdempotencyScope, IdempotencyWindow,
    IdempotentResponse, InsertGroup, StoreError,
};
use mailqueue_core::{ApiKeyId, IdempotencyFence};
use mailqueue_testkit::{test_store, StoreKind};

pub async fn api_keys_are_found_by_hash_until_revoked(kind: StoreKind) {
    let s = test_store(kind).await;
    let token = ApiToken::from_random([3; 24]);
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(t0()),
        name: "ci".into(),
        token_prefix: token.display_prefix(),
        permission: ApiKeyPermission::FullAccess,
        domain_id: None,
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
    let by_name = |name: &str| ApiKeySelector::Name(name.into());
    assert_eq!(
        s.store
            .revoke_api_key(&by_name("nobody"), t0())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.store.revoke_api_key(&by_name("ci"), t0()).await.unwrap(),
        1
    );
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
    let by_id = ApiKeySelector::Id(other.id);
    assert_eq!(
        ApiKeySelector::id_or_name(&other.id.to_string()),
        by_id.clone()
    );
    assert_eq!(s.store.revoke_api_key(&by_id, t0()).await.unwrap(), 1);
    assert_eq!(
        s.store.revoke_api_key(&by_id, t0()).await.unwrap(),
        0,
        "an id is revoked once"
    );
}

pub async fn api_key_permissions_round_trip(kind: StoreKind) {
    let s = test_store(kind).await;
    let mut made = Vec::new();
    for (i, permission) in ApiKeyPermission::ALL.into_iter().enumerate() {
        let token = ApiToken::from_random([10 + i as u8; 24]);
        let record = ApiKeyRecord {
            id: ApiKeyId::generate(t0() + Duration::milliseconds(i as i64)),
            name: permission.to_string(),
            token_prefix: token.display_prefix(),
            permission,
            domain_id: None,
            created_at: t0() + Duration::milliseconds(i as i64),
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
        made.push(record);
    }
    assert_eq!(s.store.list_api_keys().await.unwrap(), made);
}

/// A key stored before `0002_api_key_permissions` reads as `full_access`
/// once the current store has migrated the database.
pub async fn keys_made_before_permissions_have_full_access(kind: StoreKind) {
    let token = ApiToken::from_random([9; 24]);
    let id = ApiKeyId::generate(t0());
    let insert = "INSERT INTO api_keys (id, name, token_prefix, token_hash, created_at) \
                  VALUES ($1, 'old', 'mq_old', $2, $3)";
    let old = upgraded(
        kind,
        &[(1, include_str!("../../migrations/sqlite/0001_initial.sql"))],
        &[(
            1,
            include_str!("../../migrations/postgres/0001_initial.sql"),
        )],
        async |conn| {
            sqlx::query(insert)
                .bind(id.to_string())
                .bind(&token.hash().0[..])
                .bind(t0().timestamp_millis())
                .execute(conn)
                .await
                .unwrap();
        },
        async |conn| {
            sqlx::query(insert)
                .bind(id.0)
                .bind(&token.hash().0[..])
                .bind(t0())
                .execute(conn)
                .await
                .unwrap();
        },
    )
    .await;
    let store = &old.store;
    let found = store.find_api_key(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.permission, ApiKeyPermission::FullAccess);
    assert_eq!(store.list_api_keys().await.unwrap(), vec![found]);
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
                .begin_idempotent_request(
                    &scope,
                    &hash,
                    &window(now),
                    IdempotencyFence::generate(now),
                )
                .await
                .unwrap()
        }
    };
    let first = IdempotencyFence::generate(t0());
    assert_eq!(
        s.store
            .begin_idempotent_request(&scope, &h1, &window(t0()), first)
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(begin(h1, t0()).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(h2, t0()).await, IdempotencyBegin::Mismatch);
    // The same key of another API key is another key.
    let other = IdempotencyScope {
        api_key_id: ApiKeyId::generate(t0()),
        key: "order-1".into(),
    };
    assert_eq!(
        s.store
            .begin_idempotent_request(&other, &h2, &window(t0()), IdempotencyFence::generate(t0()))
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    // Completing stores the answer with the emails.
    let e = to_insert(email("idem"), t0());
    s.store
        .insert_emails(&[InsertGroup {
            emails: vec![e].into(),
            idempotency: Some(IdempotentResponse {
                scope: scope.clone(),
                fence: first,
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
    let start = |now, fence| {
        let store = s.store.clone();
        let dead = dead.clone();
        async move {
            store
                .begin_idempotent_request(&dead, &h1, &window(now), fence)
                .await
                .unwrap()
        }
    };
    let stalled = IdempotencyFence::generate(t0());
    assert_eq!(start(t0(), stalled).await, IdempotencyBegin::Started);
    assert_eq!(
        start(
            t0() + Duration::seconds(30),
            IdempotencyFence::generate(t0())
        )
        .await,
        IdempotencyBegin::InProgress
    );
    let taker = IdempotencyFence::generate(t0() + Duration::seconds(90));
    assert_eq!(
        start(t0() + Duration::seconds(90), taker).await,
        IdempotencyBegin::Started
    );
    // The request taken over can no longer commit, nor free the key.
    let answer = |fence, body: &str| InsertGroup {
        emails: vec![to_insert(email(body), t0())].into(),
        idempotency: Some(IdempotentResponse {
            scope: dead.clone(),
            fence,
            status: 202,
            body: body.into(),
        }),
    };
    let late = s.store.insert_emails(&[answer(stalled, "late")]).await;
    assert!(matches!(late, Err(StoreError::Superseded(_))), "{late:?}");
    s.store
        .abandon_idempotent_request(&dead, stalled)
        .await
        .unwrap();
    assert_eq!(
        start(
            t0() + Duration::seconds(95),
            IdempotencyFence::generate(t0())
        )
        .await,
        IdempotencyBegin::InProgress,
        "the taker still holds the key"
    );
    // Abandoning frees it at once; purging removes old keys.
    s.store
        .abandon_idempotent_request(&dead, taker)
        .await
        .unwrap();
    let last = IdempotencyFence::generate(t0() + Duration::seconds(91));
    assert_eq!(
        start(t0() + Duration::seconds(91), last).await,
        IdempotencyBegin::Started
    );
    // The holder commits, with another request's emails.
    let ok = InsertGroup {
        emails: vec![to_insert(email("no key"), t0())].into(),
        idempotency: None,
    };
    let results = s.store.insert_emails(&[answer(last, "kept"), ok]).await;
    assert!(results.is_ok(), "{results:?}");
    assert_eq!(
        start(
            t0() + Duration::seconds(92),
            IdempotencyFence::generate(t0())
        )
        .await,
        IdempotencyBegin::Replay {
            status: 202,
            body: "kept".into()
        }
    );
    let purged = s
        .store
        .purge_idempotency_keys(t0() + Duration::hours(100))
        .await
        .unwrap();
    assert!(purged >= 3, "{purged}");
}
