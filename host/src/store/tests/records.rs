//! Each kind of record: create, read, update, delete, and the refusals.

use serde_json::json;

use super::{identity, issuer};
use crate::common::digest;
use crate::store::{Store, StoreError, generate_api_key, hash_api_key};

on_each_backend!(tenants, api_keys, issuers, policies, ping);

async fn tenants(url: &str) {
    let store = &Store::open(url).await.unwrap();
    assert!(store.list_tenants().await.unwrap().is_empty());
    let b = store.create_tenant("b").await.unwrap();
    store.create_tenant("a").await.unwrap();
    assert!(matches!(
        store.create_tenant("b").await,
        Err(StoreError::Conflict(m)) if m == "tenant `b` already exists"
    ));
    assert_eq!(store.get_tenant("b").await.unwrap(), Some(b));
    assert_eq!(store.get_tenant("c").await.unwrap(), None);
    let names: Vec<_> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
}

async fn api_keys(url: &str) {
    let store = &Store::open(url).await.unwrap();
    store.create_tenant("a").await.unwrap();
    assert_eq!(store.count_operator_keys().await.unwrap(), 0);

    let (secret, hash) = generate_api_key().unwrap();
    assert!(secret.starts_with("tg_") && secret.len() == 67, "{secret}");
    assert_eq!(hash, hash_api_key(&secret));
    let (other_secret, _) = generate_api_key().unwrap();
    assert_ne!(secret, other_secret);

    let operator = store
        .create_api_key(None, &hash, "bootstrap")
        .await
        .unwrap();
    assert_eq!(operator.tenant, None);
    assert_eq!(store.count_operator_keys().await.unwrap(), 1);
    let tenant_key = store
        .create_api_key(Some("a"), &hash_api_key("tenant secret"), "ci")
        .await
        .unwrap();
    assert_eq!(tenant_key.tenant.as_deref(), Some("a"));
    assert_ne!(tenant_key.id, operator.id);
    assert_eq!(store.count_operator_keys().await.unwrap(), 1);

    assert_eq!(
        store.find_api_key(&hash).await.unwrap(),
        Some(operator.clone())
    );
    assert_eq!(
        store
            .find_api_key(&hash_api_key("tenant secret"))
            .await
            .unwrap(),
        Some(tenant_key.clone())
    );
    // Near misses find nothing: another secret, the secret's bytes, the hash of the hash.
    let mut as_bytes = [0u8; 32];
    as_bytes.copy_from_slice(&secret.as_bytes()[..32]);
    for wrong in [
        hash_api_key(&other_secret),
        hash_api_key(&secret.to_uppercase()),
        as_bytes,
        hash_api_key(&hex::encode(hash)),
    ] {
        assert_eq!(store.find_api_key(&wrong).await.unwrap(), None);
    }

    assert!(matches!(
        store.create_api_key(Some("a"), &hash, "again").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_api_key(Some("nobody"), &hash_api_key("x"), "x").await,
        Err(StoreError::NotFound(m)) if m == "tenant `nobody` not found"
    ));

    assert_eq!(
        store.list_api_keys(None).await.unwrap(),
        std::slice::from_ref(&operator)
    );
    assert_eq!(
        store.list_api_keys(Some("a")).await.unwrap(),
        std::slice::from_ref(&tenant_key)
    );
    // A key is deleted only through its own tenant (or as an operator key).
    assert!(!store.delete_api_key(None, &tenant_key.id).await.unwrap());
    assert!(!store.delete_api_key(Some("a"), &operator.id).await.unwrap());
    assert!(
        store
            .delete_api_key(Some("a"), &tenant_key.id)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .find_api_key(&hash_api_key("tenant secret"))
            .await
            .unwrap(),
        None
    );
    assert!(store.delete_api_key(None, &operator.id).await.unwrap());
    assert_eq!(store.count_operator_keys().await.unwrap(), 0);
}

async fn issuers(url: &str) {
    let store = &Store::open(url).await.unwrap();
    assert!(matches!(
        store.put_issuer(&issuer("a", "cluster", "https://x")).await,
        Err(StoreError::NotFound(_))
    ));
    store.create_tenant("a").await.unwrap();
    let first = store
        .put_issuer(&issuer("a", "prod", "https://prod.example"))
        .await
        .unwrap();
    assert_eq!(first.source, json!({"discovery": "https://prod.example"}));
    assert!(first.created_at > 0 && first.created_at == first.updated_at);
    store
        .put_issuer(&issuer("a", "dev", "https://dev.example"))
        .await
        .unwrap();
    assert_eq!(
        store.get_issuer("a", "prod").await.unwrap(),
        Some(first.clone())
    );

    let mut changed = issuer("a", "prod", "https://prod2.example");
    changed.source = json!({"jwks": {"keys": []}});
    changed.created_at = 1; // ignored: the store keeps its own times
    let updated = store.put_issuer(&changed).await.unwrap();
    assert_eq!(updated.created_at, first.created_at);
    assert_eq!(updated.issuer_url, "https://prod2.example");
    assert_eq!(updated.source, json!({"jwks": {"keys": []}}));
    assert_eq!(store.get_issuer("a", "prod").await.unwrap(), Some(updated));

    let names: Vec<_> = store
        .list_issuers("a")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["dev", "prod"]);
    assert_eq!(store.all_issuers().await.unwrap().len(), 2);

    // An issuer an identity names cannot be deleted from under it.
    store
        .put_identity(&identity("a", "deployer", "prod"))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_issuer("a", "prod").await,
        Err(StoreError::Conflict(m)) if m == "issuer `prod` is used by identities"
    ));
    assert!(store.get_issuer("a", "prod").await.unwrap().is_some());
    assert!(store.delete_identity("a", "deployer").await.unwrap());
    assert!(store.delete_issuer("a", "prod").await.unwrap());
    assert!(!store.delete_issuer("a", "prod").await.unwrap());
    assert_eq!(store.get_issuer("a", "prod").await.unwrap(), None);
}

async fn policies(url: &str) {
    let store = &Store::open(url).await.unwrap();
    let bytes = b"\0asm not really a component".to_vec();
    let d = digest(&bytes);
    assert!(matches!(
        store.put_policy("a", &d, &bytes, None).await,
        Err(StoreError::NotFound(_))
    ));
    store.create_tenant("a").await.unwrap();
    // A digest that is not the bytes' own is refused, so a digest always names one module.
    let other = digest(b"other");
    assert!(matches!(
        store.put_policy("a", &other, &bytes, None).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.put_policy("a", "sha256:ABC", &bytes, None).await,
        Err(StoreError::Invalid(_))
    ));

    let meta = store
        .put_policy("a", &d, &bytes, Some("team-scopes"))
        .await
        .unwrap();
    assert_eq!(meta.size, bytes.len() as u64);
    assert_eq!(meta.name.as_deref(), Some("team-scopes"));
    // Idempotent: same record again; a nameless upload keeps the name, a named one renames.
    assert_eq!(store.put_policy("a", &d, &bytes, None).await.unwrap(), meta);
    let renamed = store.put_policy("a", &d, &bytes, Some("v2")).await.unwrap();
    assert_eq!(renamed.name.as_deref(), Some("v2"));
    assert_eq!(renamed.uploaded_at, meta.uploaded_at);

    let record = store.get_policy("a", &d).await.unwrap().unwrap();
    assert_eq!(record.bytes, bytes);
    assert_eq!(record.meta, renamed);
    assert!(store.has_policy("a", &d).await.unwrap());
    assert_eq!(store.get_policy("a", &other).await.unwrap(), None);

    let empty = digest(b"");
    store.put_policy("a", &empty, b"", None).await.unwrap();
    assert_eq!(
        store.get_policy("a", &empty).await.unwrap().unwrap().bytes,
        b""
    );
    let listed = store.list_policies("a").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&renamed));
    let all = store.all_policies().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&renamed));
}

async fn ping(url: &str) {
    let store = &Store::open(url).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
    assert!(store.ping().await.is_err());
}
