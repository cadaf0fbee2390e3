//! Each kind of record: create, read, update, delete, and the refusals.

use serde_json::json;

use super::{identity, issuer, tenant_with_issuer};
use crate::policy::module::digest;
use crate::store::{
    DecisionRecord, IdentityRecord, MAX_DECISION_PAGE, SigningKeyRecord, Store, StoreError,
    generate_api_key, hash_api_key,
};

on_sqlite!(
    tenants,
    api_keys,
    issuers,
    policies,
    identities,
    identity_uids,
    signing_keys,
    decisions,
    decision_pages,
    ping
);

async fn tenants(store: &Store) {
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

async fn api_keys(store: &Store) {
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

async fn issuers(store: &Store) {
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

async fn policies(store: &Store) {
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
    assert!(all.iter().any(|p| p.bytes == bytes && p.meta == renamed));
}

async fn identities(store: &Store) {
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

async fn identity_uids(store: &Store) {
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

fn key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        private_pkcs8: vec![0x30, 0x81, 0x87, 0, 1, 2, 255],
        public_jwk: json!({"kty": "EC", "kid": kid}),
        created_at,
        retired_at: None,
    }
}

async fn signing_keys(store: &Store) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    store.insert_signing_key(&key("old", 100)).await.unwrap();
    store.insert_signing_key(&key("new", 300)).await.unwrap();
    store.insert_signing_key(&key("mid", 200)).await.unwrap();
    assert!(matches!(
        store.insert_signing_key(&key("mid", 400)).await,
        Err(StoreError::Conflict(_))
    ));
    let keys = store.signing_keys().await.unwrap();
    let kids: Vec<_> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["new", "mid", "old"]);
    assert_eq!(keys[2], key("old", 100));

    assert_eq!(store.retire_signing_keys_before(300).await.unwrap(), 2);
    // Already retired keys keep their retirement time.
    assert_eq!(store.retire_signing_keys_before(300).await.unwrap(), 0);
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys[0].retired_at, None);
    let retired_at = keys[1].retired_at.unwrap();
    assert!(retired_at >= crate::store::now() - 5);
    assert_eq!(keys[2].retired_at, Some(retired_at));

    assert_eq!(
        store
            .delete_signing_keys_retired_before(retired_at)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_signing_keys_retired_before(retired_at + 1)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.signing_keys().await.unwrap(), [key("new", 300)]);

    let shown = format!("{:?}", key("k", 1));
    assert!(
        shown.contains("<redacted>") && !shown.contains("48, 129"),
        "{shown}"
    );
    assert!(
        !serde_json::to_string(&key("k", 1))
            .unwrap()
            .contains("private")
    );
}

fn decision(tenant: &str, n: i64) -> DecisionRecord {
    DecisionRecord {
        tenant: tenant.to_owned(),
        identity: "deployer".to_owned(),
        at: 1_700_000_000 + n,
        fuel_used: n,
        ..DecisionRecord::default()
    }
}

async fn decisions(store: &Store) {
    let full = DecisionRecord {
        id: 12345, // ignored
        tenant: "a".to_owned(),
        identity: "deployer".to_owned(),
        at: 1_700_000_000,
        allowed: true,
        code: Some("ok".to_owned()),
        reason: Some("matched `prod`".to_owned()),
        source: Some("policy".to_owned()),
        subject: Some("system:serviceaccount:prod:deployer".to_owned()),
        issuer: Some("https://k8s.example".to_owned()),
        policy_digest: Some(digest(b"p")),
        fuel_used: 4242,
        scopes: vec!["deploy".to_owned(), "read".to_owned()],
        client_address: Some("10.0.0.7".to_owned()),
        jti: Some("jti-1".to_owned()),
    };
    let id = store.append_decision(&full).await.unwrap();
    let denied = decision("a", 1);
    let id2 = store.append_decision(&denied).await.unwrap();
    assert!(id2 > id);
    let listed = store.list_decisions("a", 10, None).await.unwrap();
    assert_eq!(
        listed,
        [
            DecisionRecord { id: id2, ..denied },
            DecisionRecord { id, ..full }
        ]
    );
    assert!(store.list_decisions("a", 0, None).await.unwrap().is_empty());
}

async fn decision_pages(store: &Store) {
    for n in 0..25 {
        store.append_decision(&decision("a", n)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_decisions("a", 10, before).await.unwrap();
        assert!(page.len() <= 10);
        if page.is_empty() {
            break;
        }
        assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        before = page.last().map(|d| d.id);
        seen.extend(page.into_iter().map(|d| d.fuel_used));
    }
    assert_eq!(seen, (0..25).rev().collect::<Vec<_>>());
    // A cursor past the end or before the start.
    assert_eq!(
        store
            .list_decisions("a", 10, Some(i64::MAX))
            .await
            .unwrap()
            .len(),
        10
    );
    assert!(
        store
            .list_decisions("a", 10, Some(1))
            .await
            .unwrap()
            .is_empty()
    );

    for n in 25..1100 {
        store.append_decision(&decision("a", n)).await.unwrap();
    }
    let capped = store.list_decisions("a", u32::MAX, None).await.unwrap();
    assert_eq!(capped.len(), MAX_DECISION_PAGE as usize);
}

async fn ping(store: &Store) {
    store.ping().await.unwrap();
    store.close().await;
    assert!(store.ping().await.is_err());
}
