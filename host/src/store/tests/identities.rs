//! Identities and their opaque unique ids.

use super::{identity, tenant_with_issuer};
use crate::common::digest;
use crate::store::{Backend, IdentityRecord, Store, StoreError};

on_each_backend!(
    identities,
    identity_uids,
    reads_see_this_stores_writes,
    a_started_store_answers_from_its_warmed_cache,
);

async fn identities(url: &str) {
    let store = &Store::open(url).await.unwrap();
    tenant_with_issuer(store, "a").await;
    assert!(matches!(
        store.put_identity(&identity("a", "x", "no-such-issuer")).await,
        Err(StoreError::NotFound(m)) if m == "issuer `no-such-issuer` not found"
    ));
    assert!(matches!(
        store.put_identity(&identity("nobody", "x", "cluster")).await,
        Err(StoreError::NotFound(m)) if m == "tenant `nobody` not found"
    ));
    let mut with_policy = identity("a", "x", "cluster");
    with_policy.policy = digest(b"module");
    with_policy.resolved_policy = with_policy.policy.clone();
    assert!(matches!(
        store.put_identity(&with_policy).await,
        Err(StoreError::NotFound(m)) if m.starts_with("policy `sha256:")
    ));
    store
        .put_policy("a", &with_policy.policy, b"module", None)
        .await
        .unwrap();
    with_policy.fuel = Some(5_000_000);
    with_policy.accepted_audiences = vec!["tollgate".to_owned()];
    let stored = store.put_identity(&with_policy).await.unwrap();
    assert_eq!(
        IdentityRecord {
            uid: String::new(),
            created_at: 0,
            updated_at: 0,
            ..stored.clone()
        },
        with_policy
    );
    assert_eq!(
        store.get_identity("a", "x").await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store.get_identity_by_uid(&stored.uid).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(store.get_identity("a", "y").await.unwrap(), None);

    store
        .put_identity(&identity("a", "b-first", "cluster"))
        .await
        .unwrap();
    let ids: Vec<_> = store
        .list_identities("a")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["b-first", "x"]);

    assert!(store.delete_identity("a", "x").await.unwrap());
    assert!(!store.delete_identity("a", "x").await.unwrap());
    assert_eq!(store.get_identity("a", "x").await.unwrap(), None);
    assert_eq!(store.get_identity_by_uid(&stored.uid).await.unwrap(), None);
}

async fn identity_uids(url: &str) {
    let store = &Store::open(url).await.unwrap();
    tenant_with_issuer(store, "a").await;
    let first = store
        .put_identity(&identity("a", "x", "cluster"))
        .await
        .unwrap();
    let uid = &first.uid;
    // A random version-4 UUID.
    assert_eq!(uid.len(), 36, "{uid}");
    assert_eq!(&uid[14..15], "4");
    assert!("89ab".contains(&uid[19..20]), "{uid}");

    // Updates keep uid and creation time, even when the caller sends another uid.
    let mut update = identity("a", "x", "cluster");
    update.scopes = vec!["read".to_owned()];
    update.uid = "attacker-chosen".to_owned();
    let updated = store.put_identity(&update).await.unwrap();
    assert_eq!(updated.uid, first.uid);
    assert_eq!(updated.created_at, first.created_at);
    assert_eq!(updated.scopes, ["read"]);
    assert_eq!(
        store.get_identity_by_uid("attacker-chosen").await.unwrap(),
        None
    );

    // Deleting and recreating gives a new uid: tokens naming the old one name nothing.
    store.delete_identity("a", "x").await.unwrap();
    let recreated = store
        .put_identity(&identity("a", "x", "cluster"))
        .await
        .unwrap();
    assert_ne!(recreated.uid, first.uid);
    assert_eq!(store.get_identity_by_uid(&first.uid).await.unwrap(), None);

    let mut uids = std::collections::HashSet::new();
    for i in 0..50 {
        let stored = store
            .put_identity(&identity("a", &format!("id{i}"), "cluster"))
            .await;
        assert!(uids.insert(stored.unwrap().uid));
    }
}

/// Identities and issuers are served from the read cache after the first read: every write
/// through the store must show in the next read, by name and by uid.
async fn reads_see_this_stores_writes(url: &str) {
    let store = &Store::open(url).await.unwrap();
    tenant_with_issuer(store, "a").await;
    let first = store
        .put_identity(&identity("a", "x", "cluster"))
        .await
        .unwrap();
    assert_eq!(store.get_identity("a", "x").await.unwrap().unwrap(), first);
    assert_eq!(
        store
            .get_identity_by_uid(&first.uid)
            .await
            .unwrap()
            .unwrap(),
        first
    );

    let mut changed = identity("a", "x", "cluster");
    changed.scopes = vec!["other".to_owned()];
    let second = store.put_identity(&changed).await.unwrap();
    assert_eq!(
        store.get_identity("a", "x").await.unwrap().unwrap().scopes,
        ["other"]
    );
    assert_eq!(
        store
            .get_identity_by_uid(&first.uid)
            .await
            .unwrap()
            .unwrap(),
        second
    );

    assert!(store.delete_identity("a", "x").await.unwrap());
    assert_eq!(store.get_identity("a", "x").await.unwrap(), None);
    assert_eq!(store.get_identity_by_uid(&first.uid).await.unwrap(), None);
    let again = store
        .put_identity(&identity("a", "x", "cluster"))
        .await
        .unwrap();
    assert_ne!(again.uid, first.uid);
    assert_eq!(store.get_identity_by_uid(&first.uid).await.unwrap(), None);

    let issuer = store.get_issuer("a", "cluster").await.unwrap().unwrap();
    let mut moved = issuer.clone();
    moved.issuer_url = "https://k8s-2.example".to_owned();
    store.put_issuer(&moved).await.unwrap();
    assert_eq!(
        store
            .get_issuer("a", "cluster")
            .await
            .unwrap()
            .unwrap()
            .issuer_url,
        "https://k8s-2.example"
    );
    assert!(store.delete_identity("a", "x").await.unwrap());
    assert!(store.delete_issuer("a", "cluster").await.unwrap());
    assert_eq!(store.get_issuer("a", "cluster").await.unwrap(), None);
}

/// `warm_cache` fills the cache from the database (SQLite), and writes keep what they
/// committed: rows deleted behind the store's back are still answered from memory.
async fn a_started_store_answers_from_its_warmed_cache(url: &str) {
    let before = Store::open(url).await.unwrap();
    tenant_with_issuer(&before, "a").await;
    let mut stored = Vec::new();
    for id in ["x", "y", "z"] {
        stored.push(
            before
                .put_identity(&identity("a", id, "cluster"))
                .await
                .unwrap(),
        );
    }
    drop(before);

    let store = &Store::open(url).await.unwrap();
    let warmed = store.warm_cache().await.unwrap();
    if store.backend() == Backend::Postgres {
        assert_eq!(warmed, 0, "entries expire within a second: nothing to warm");
        return;
    }
    assert_eq!(warmed, 3);
    let mut changed = identity("a", "x", "cluster");
    changed.scopes = vec!["changed".to_owned()];
    let changed = store.put_identity(&changed).await.unwrap();
    sqlx::query("DELETE FROM identities")
        .execute(&store.pool)
        .await
        .unwrap();
    assert_eq!(store.get_identity("a", "x").await.unwrap(), Some(changed));
    assert_eq!(
        store.get_identity_by_uid(&stored[1].uid).await.unwrap(),
        Some(stored[1].clone())
    );
    assert_eq!(
        store
            .get_issuer("a", "cluster")
            .await
            .unwrap()
            .map(|i| i.name),
        Some("cluster".to_owned()),
        "issuers are warmed too"
    );
}
