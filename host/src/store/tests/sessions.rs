//! Uses and revocations of sessions (`store/sessions.rs`), on each backend.

use super::super::{Consumed, DecisionRecord, Store};

on_each_backend!(
    uses_are_counted_to_the_limit_and_no_further,
    another_tenant_cannot_consume_a_sessions_uses,
    concurrent_consumers_of_the_last_use_get_it_once,
    revocations_hold_until_pruned_after_the_session_ends,
    an_identity_revocation_covers_its_recorded_sessions_only,
);

async fn uses_are_counted_to_the_limit_and_no_further(url: &str) {
    let store = Store::open(url).await.unwrap();
    for n in 1..=3 {
        assert_eq!(
            store.consume_use("a", "s1", 3, 100).await.unwrap(),
            Consumed::Used(n)
        );
    }
    assert_eq!(
        store.consume_use("a", "s1", 3, 100).await.unwrap(),
        Consumed::Exhausted
    );
    assert_eq!(store.uses_consumed("s1").await.unwrap(), 3);
    // Another session counts on its own.
    assert_eq!(
        store.consume_use("a", "s2", 3, 100).await.unwrap(),
        Consumed::Used(1)
    );
}

async fn another_tenant_cannot_consume_a_sessions_uses(url: &str) {
    let store = Store::open(url).await.unwrap();
    store.consume_use("a", "s1", 2, 100).await.unwrap();
    assert_eq!(
        store.consume_use("b", "s1", 2, 100).await.unwrap(),
        Consumed::Exhausted
    );
    assert_eq!(store.uses_consumed("s1").await.unwrap(), 1);
}

async fn concurrent_consumers_of_the_last_use_get_it_once(url: &str) {
    let store = Store::open(url).await.unwrap();
    store.consume_use("a", "s", 3, 100).await.unwrap();
    store.consume_use("a", "s", 3, 100).await.unwrap();
    let tries: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume_use("a", "s", 3, 100).await.unwrap() })
        })
        .collect();
    let mut used = 0;
    for handle in tries {
        if matches!(handle.await.unwrap(), Consumed::Used(_)) {
            used += 1;
        }
    }
    assert_eq!(used, 1, "the last use was consumed {used} times");
    assert_eq!(store.uses_consumed("s").await.unwrap(), 3);
}

async fn revocations_hold_until_pruned_after_the_session_ends(url: &str) {
    let store = Store::open(url).await.unwrap();
    assert!(!store.is_session_revoked("s").await.unwrap());
    assert!(store.revoke_session("a", "s", 100).await.unwrap());
    assert!(!store.revoke_session("a", "s", 100).await.unwrap());
    assert!(store.is_session_revoked("s").await.unwrap());
    store.consume_use("a", "u", 1, 50).await.unwrap();
    assert_eq!(store.prune_sessions(99).await.unwrap(), 1);
    assert!(store.is_session_revoked("s").await.unwrap());
    assert_eq!(store.prune_sessions(101).await.unwrap(), 1);
    assert!(!store.is_session_revoked("s").await.unwrap());
}

async fn an_identity_revocation_covers_its_recorded_sessions_only(url: &str) {
    let store = Store::open(url).await.unwrap();
    let record = |identity: &str, session: &str, ends: i64, allowed: bool| DecisionRecord {
        tenant: "a".into(),
        identity: identity.into(),
        allowed,
        session: Some(session.into()),
        session_ends: Some(ends),
        ..Default::default()
    };
    store
        .append_decisions(&[
            record("ci", "s1", 200, true),
            record("ci", "s1", 300, true),
            record("ci", "s2", 50, true),
            record("ci", "s3", 200, false),
            record("other", "s4", 200, true),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .revoke_identity_sessions("a", "ci", 100)
            .await
            .unwrap(),
        1
    );
    assert!(store.is_session_revoked("s1").await.unwrap());
    for alive in ["s2", "s3", "s4"] {
        assert!(!store.is_session_revoked(alive).await.unwrap(), "{alive}");
    }
}
