//! The suppression list as the API manages it.

use crate::support::*;
use chrono::Duration;
use mailqueue_core::store::Store;
use mailqueue_core::suppression::{
    Suppression, SuppressionOrigin, SuppressionQuery, SuppressionRef,
};
use mailqueue_core::EmailAddress;
use mailqueue_core::SuppressionId;
use mailqueue_testkit::{test_store, StoreKind};

fn manual(email: &str, at_second: i64) -> Suppression {
    let at = t0() + Duration::seconds(at_second);
    Suppression {
        id: SuppressionId::generate(at),
        email: email.into(),
        origin: SuppressionOrigin::Manual,
        reason: Some("asked to stop".into()),
        email_id: None,
        created_at: at,
    }
}

async fn page(store: &dyn Store, query: SuppressionQuery) -> Vec<String> {
    store
        .list_suppressions(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.email)
        .collect()
}

pub async fn suppressions_are_added_once_listed_and_removed(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let first = manual("a@example.com", 0);
    let added = store
        .add_suppressions(&[first.clone(), manual("b@example.com", 1)])
        .await
        .unwrap();
    assert_eq!(added[0], first);
    // Adding a listed address again answers the entry already there.
    let again = store
        .add_suppressions(&[manual("a@example.com", 5), manual("c@example.com", 2)])
        .await
        .unwrap();
    assert_eq!(again[0], first, "the first entry stays");
    assert_eq!(again[1].email, "c@example.com");

    let all = SuppressionQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        page(store, all.clone()).await,
        ["c@example.com", "b@example.com", "a@example.com"]
    );
    let newest = store.list_suppressions(&all).await.unwrap()[0].id;
    assert_eq!(
        page(
            store,
            SuppressionQuery {
                limit: 1,
                after: Some(newest),
                ..Default::default()
            }
        )
        .await,
        ["b@example.com"]
    );
    assert_eq!(
        page(
            store,
            SuppressionQuery {
                limit: 10,
                origin: Some(SuppressionOrigin::Bounce),
                ..Default::default()
            }
        )
        .await,
        Vec::<String>::new()
    );

    let by_email = SuppressionRef::Email("b@example.com".into());
    let b = store.get_suppression(&by_email).await.unwrap().unwrap();
    assert_eq!(
        store
            .get_suppression(&SuppressionRef::Id(b.id))
            .await
            .unwrap(),
        Some(b.clone())
    );
    let removed = store
        .remove_suppressions(&[
            SuppressionRef::Id(b.id),
            SuppressionRef::Email("nobody@example.com".into()),
            SuppressionRef::Email("a@example.com".into()),
        ])
        .await
        .unwrap();
    assert_eq!(removed[0].as_ref().map(|s| s.id), Some(b.id));
    assert_eq!(removed[1], None);
    assert_eq!(removed[2].as_ref().map(|s| s.id), Some(first.id));
    assert_eq!(page(store, all).await, ["c@example.com"]);
    assert!(store
        .suppressed_among(&[
            EmailAddress::parse("a@example.com").unwrap(),
            EmailAddress::parse("c@example.com").unwrap()
        ])
        .await
        .unwrap()
        .iter()
        .all(|r| r.address.as_str() == "c@example.com"));
}
