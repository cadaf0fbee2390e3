//! Tenant B never sees, changes or references tenant A's records, even under equal names.

use super::{identity, issuer, tenant_with_issuer};
use crate::common::digest;
use crate::store::{DecisionRecord, Store, StoreError};

on_each_backend!(same_names_stay_apart, no_references_across_tenants);

async fn same_names_stay_apart(url: &str) {
    let store = &Store::open(url).await.unwrap();
    tenant_with_issuer(store, "a").await;
    tenant_with_issuer(store, "b").await;
    // Same issuer name and URL in both tenants, registered independently.
    let a_issuer = store.get_issuer("a", "cluster").await.unwrap().unwrap();
    let mut b_issuer = issuer("b", "cluster", "https://k8s.example");
    b_issuer.source = serde_json::json!({"jwks": "b's keys"});
    let b_issuer = store.put_issuer(&b_issuer).await.unwrap();
    assert_eq!(
        store.get_issuer("a", "cluster").await.unwrap(),
        Some(a_issuer.clone())
    );
    assert_eq!(
        store.list_issuers("b").await.unwrap(),
        std::slice::from_ref(&b_issuer)
    );
    assert_eq!(store.list_issuers("a").await.unwrap(), [a_issuer]);

    // Same policy module in both; only A has a second one.
    let shared = b"shared module";
    let only_a = b"a's module";
    store
        .put_policy("a", &digest(shared), shared, Some("a-name"))
        .await
        .unwrap();
    store
        .put_policy("a", &digest(only_a), only_a, None)
        .await
        .unwrap();
    store
        .put_policy("b", &digest(shared), shared, Some("b-name"))
        .await
        .unwrap();
    assert_eq!(store.get_policy("b", &digest(only_a)).await.unwrap(), None);
    assert!(!store.has_policy("b", &digest(only_a)).await.unwrap());
    let b_policies = store.list_policies("b").await.unwrap();
    assert_eq!(b_policies.len(), 1);
    assert_eq!(b_policies[0].name.as_deref(), Some("b-name"));
    assert_eq!(
        store
            .get_policy("a", &digest(shared))
            .await
            .unwrap()
            .unwrap()
            .meta
            .name
            .as_deref(),
        Some("a-name")
    );

    // Same identity id in both: different records, different uids.
    let mut a_identity = identity("a", "deployer", "cluster");
    a_identity.scopes = vec!["a-scope".to_owned()];
    let a_identity = store.put_identity(&a_identity).await.unwrap();
    let b_identity = store
        .put_identity(&identity("b", "deployer", "cluster"))
        .await
        .unwrap();
    assert_ne!(a_identity.uid, b_identity.uid);
    assert_eq!(
        store.get_identity("b", "deployer").await.unwrap(),
        Some(b_identity.clone())
    );
    assert_eq!(
        store.get_identity("a", "deployer").await.unwrap(),
        Some(a_identity.clone())
    );
    assert_eq!(
        store.list_identities("b").await.unwrap(),
        std::slice::from_ref(&b_identity)
    );
    // A uid names one identity, with its tenant: callers compare that tenant.
    let by_uid = store
        .get_identity_by_uid(&a_identity.uid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_uid.tenant, "a");

    // Deleting in B leaves A alone.
    assert!(store.delete_identity("b", "deployer").await.unwrap());
    assert!(store.get_identity("a", "deployer").await.unwrap().is_some());
    assert!(store.delete_issuer("b", "cluster").await.unwrap());
    assert!(store.get_issuer("a", "cluster").await.unwrap().is_some());
    // A's issuer is still in use by A's identity, whatever B did.
    assert!(matches!(
        store.delete_issuer("a", "cluster").await,
        Err(StoreError::Conflict(_))
    ));

    // Decisions: each tenant pages through its own only.
    let mut ids = Vec::new();
    for (n, tenant) in ["a", "b", "a", "b", "a"].into_iter().enumerate() {
        let d = DecisionRecord {
            tenant: tenant.to_owned(),
            identity: "deployer".to_owned(),
            fuel_used: i64::try_from(n).unwrap(),
            ..DecisionRecord::default()
        };
        ids.push(store.append_decision(&d).await.unwrap());
    }
    let b: Vec<_> = store.list_decisions("b", 100, None).await.unwrap();
    assert_eq!(b.iter().map(|d| d.fuel_used).collect::<Vec<_>>(), [3, 1]);
    assert!(b.iter().all(|d| d.tenant == "b"));
    // A cursor taken from A's log still returns only B's decisions.
    let after_a = store.list_decisions("b", 100, Some(ids[4])).await.unwrap();
    assert_eq!(after_a, b);
    assert_eq!(store.list_decisions("a", 100, None).await.unwrap().len(), 3);
    assert!(
        store
            .list_decisions("c", 100, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn no_references_across_tenants(url: &str) {
    let store = &Store::open(url).await.unwrap();
    tenant_with_issuer(store, "a").await;
    store.create_tenant("b").await.unwrap();
    store
        .put_issuer(&issuer("a", "a-only", "https://a.example"))
        .await
        .unwrap();
    let module = b"a's module";
    store
        .put_policy("a", &digest(module), module, None)
        .await
        .unwrap();

    // B cannot bind its identity to A's issuer...
    assert!(matches!(
        store.put_identity(&identity("b", "x", "a-only")).await,
        Err(StoreError::NotFound(_))
    ));
    // ...nor to A's policy module, even knowing its digest.
    store
        .put_issuer(&issuer("b", "cluster", "https://b.example"))
        .await
        .unwrap();
    let mut borrowing = identity("b", "x", "cluster");
    borrowing.policy = digest(module);
    assert!(matches!(
        store.put_identity(&borrowing).await,
        Err(StoreError::NotFound(_))
    ));
    // ...not as what its policy resolves to, nor as a shadow candidate.
    let mut resolving = identity("b", "x", "cluster");
    resolving.resolved_policy = digest(module);
    let mut shadowing = identity("b", "x", "cluster");
    shadowing.shadow = Some(crate::store::Shadow {
        policy: "team".into(),
        resolved: digest(module),
        sample: 1.0,
        config: None,
    });
    for attempt in [resolving, shadowing] {
        assert!(matches!(
            store.put_identity(&attempt).await,
            Err(StoreError::NotFound(_))
        ));
    }
    assert!(store.list_identities("b").await.unwrap().is_empty());
    // Nor create records in a tenant that does not exist.
    assert!(matches!(
        store
            .put_issuer(&issuer("c", "cluster", "https://c.example"))
            .await,
        Err(StoreError::NotFound(_))
    ));
}
