//! Opening, reopening and sharing the store.

use super::{TempDir, identity, sqlite_store, tenant_with_issuer};
use crate::common::digest;
use crate::store::{
    Backend, DecisionRecord, RESTART_BUSY_MS, SigningKeyRecord, Store, StoreError, checkpoint,
    generate_api_key, hash_api_key, passive_checkpoint,
};

on_each_backend!(restart_keeps_everything, concurrent_writers_do_not_fail);

async fn restart_keeps_everything(url: &str) {
    let store = Store::open(url).await.unwrap();
    tenant_with_issuer(&store, "a").await;
    let key = store
        .create_api_key(Some("a"), &hash_api_key("s"), "ci")
        .await
        .unwrap();
    store
        .create_api_key(None, &hash_api_key("op"), "operator")
        .await
        .unwrap();
    let module = b"module bytes";
    store
        .put_policy("a", &digest(module), module, Some("p"))
        .await
        .unwrap();
    let mut with_policy = identity("a", "deployer", "cluster");
    with_policy.policy = digest(module);
    let stored = store.put_identity(&with_policy).await.unwrap();
    let signing = SigningKeyRecord {
        kid: "k1".to_owned(),
        alg: "EdDSA".to_owned(),
        private_pkcs8: vec![1, 2, 3],
        public_jwk: serde_json::json!({"kty": "OKP"}),
        created_at: 5,
        retired_at: None,
    };
    store.insert_signing_key(&signing).await.unwrap();
    let decision = DecisionRecord {
        tenant: "a".to_owned(),
        identity: "deployer".to_owned(),
        allowed: true,
        scopes: vec!["deploy".to_owned()],
        ..DecisionRecord::default()
    };
    let decision_id = store.append_decision(&decision).await.unwrap();
    let tenants = store.list_tenants().await.unwrap();
    let issuers = store.list_issuers("a").await.unwrap();
    let policies = store.all_policies().await.unwrap();
    store.close().await;
    drop(store);

    // Reopening runs the migrations again: they must recognise the applied schema.
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.list_tenants().await.unwrap(), tenants);
    assert_eq!(
        store.find_api_key(&hash_api_key("s")).await.unwrap(),
        Some(key)
    );
    assert_eq!(store.count_operator_keys().await.unwrap(), 1);
    assert_eq!(store.list_issuers("a").await.unwrap(), issuers);
    assert_eq!(store.all_policies().await.unwrap(), policies);
    assert_eq!(
        store.get_identity("a", "deployer").await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store.get_identity_by_uid(&stored.uid).await.unwrap(),
        Some(stored)
    );
    assert_eq!(store.signing_keys().await.unwrap(), [signing]);
    assert_eq!(
        store.list_decisions("a", 10, None).await.unwrap(),
        [DecisionRecord {
            id: decision_id,
            ..decision
        }]
    );
    // Ids keep growing after a restart.
    let next = store
        .append_decision(&DecisionRecord::default())
        .await
        .unwrap();
    assert!(next > decision_id);
}

/// Commits never checkpoint (each connection has `wal_autocheckpoint = 0` and syncs only at
/// checkpoints); the background task copies the log into the database file instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_in_the_background_not_by_commits() {
    let dir = TempDir::new();
    let store = Store::open(&dir.url()).await.unwrap();
    for (pragma, expected) in [
        ("synchronous", 1),
        ("wal_autocheckpoint", 0),
        ("journal_size_limit", 64 << 20),
    ] {
        let value: i64 = sqlx::query_scalar(&format!("PRAGMA {pragma}"))
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(value, expected, "PRAGMA {pragma}");
    }
    let file = dir.0.join("tollgate.db");
    let before = std::fs::metadata(&file).unwrap().len();
    let records = large_batch();
    for _ in 0..8 {
        store.append_decisions(&records).await.unwrap();
    }
    // About 1 MB went to the log; the database file grows only when a checkpoint copies it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&file).unwrap().len() < before + (512 << 10) {
        assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store.close().await;
}

/// A checkpoint escalates to `RESTART` only past the limit, says so, and the log starts over.
/// (In a quiet database a passive checkpoint lets the log start over too; under a steady
/// stream of writes only the escalation does, which the scale bench shows on the WAL file.)
#[tokio::test]
async fn a_long_wal_is_restarted_by_the_next_checkpoint() {
    let dir = TempDir::new();
    let store = Store::open(&dir.url()).await.unwrap();
    let frames = || async { passive_checkpoint(&store.pool).await.unwrap() };
    let records = large_batch();
    store.append_decisions(&records).await.unwrap();
    let grown = frames().await;
    assert!(grown > 16, "the log holds the batch: {grown} frames");
    // Under the limit: copied, nothing more.
    assert!(!checkpoint(&store.pool, i64::MAX).await.unwrap());
    // Over it: the next write starts the log over, and nothing was lost.
    assert!(checkpoint(&store.pool, 8).await.unwrap());
    store.append_decisions(&records[..1]).await.unwrap();
    let after = frames().await;
    assert!(
        after < grown,
        "the log started over: {after} frames, was {grown}"
    );
    let all = store.list_decisions("a", 1000, None).await.unwrap();
    assert_eq!(all.len(), 65);
    store.close().await;
}

/// A `RESTART` that a reader of an older snapshot holds back gives up within
/// `RESTART_BUSY_MS` (it holds new writers back while it waits: with the connection's 5 s
/// busy timeout, a long read stopped the audit log that long), and the pool's connections
/// keep their own busy timeout.
#[tokio::test]
async fn a_restart_held_back_by_a_reader_gives_up_at_once() {
    let dir = TempDir::new();
    let store = Store::open(&dir.url()).await.unwrap();
    let records = large_batch();
    store.append_decisions(&records).await.unwrap();
    let mut reader = store.pool.acquire().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *reader).await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    store.append_decisions(&records).await.unwrap();
    let started = std::time::Instant::now();
    assert!(
        !checkpoint(&store.pool, 0).await.unwrap(),
        "the reader holds the log"
    );
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(1),
        "waited {waited:?}"
    );
    sqlx::query("COMMIT").execute(&mut *reader).await.unwrap();
    drop(reader);
    assert!(checkpoint(&store.pool, 0).await.unwrap());
    for _ in 0..4 {
        let mut connection = store.pool.acquire().await.unwrap();
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        assert!(
            timeout > i64::from(RESTART_BUSY_MS),
            "busy timeout {timeout}"
        );
    }
    store.close().await;
}

#[tokio::test]
async fn open_creates_the_file_and_its_directory_in_wal_mode() {
    let dir = TempDir::new();
    let path = dir.0.join("nested/deeper/tollgate.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    assert_eq!(store.backend(), Backend::Sqlite);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    store.close().await;

    // The short form and an explicit mode work as well.
    let short = dir.0.join("short.db");
    Store::open(&format!("sqlite:{}", short.display()))
        .await
        .unwrap()
        .close()
        .await;
    assert!(short.exists());
    let read_only = format!("sqlite:{}?mode=ro", dir.0.join("absent.db").display());
    assert!(matches!(
        Store::open(&read_only).await,
        Err(StoreError::Database(_))
    ));
}

#[tokio::test]
async fn in_memory_store_keeps_data_across_calls() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    tenant_with_issuer(&store, "a").await;
    store
        .put_identity(&identity("a", "x", "cluster"))
        .await
        .unwrap();
    // Sequential calls may run on any pooled connection: they must see one database.
    for _ in 0..5 {
        assert_eq!(store.list_tenants().await.unwrap().len(), 1);
    }
    store.ping().await.unwrap();
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_echoing_secrets() {
    for (url, shown) in [
        ("mysql://root:hunter2@db/tollgate", "`mysql`"),
        ("/var/lib/tollgate.db", "``"),
        ("user:hunter2@db/x", "`user`"),
        ("p@ss/w0rd:hunter2@db", "`?`"),
    ] {
        let error = Store::open(url).await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, StoreError::UnsupportedUrl(_)),
            "{url}: {message}"
        );
        assert!(message.contains(shown), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}

async fn concurrent_writers_do_not_fail(url: &str) {
    let store = Store::open(url).await.unwrap();
    tenant_with_issuer(&store, "a").await;
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..50 {
                    let d = DecisionRecord {
                        tenant: "a".to_owned(),
                        identity: format!("task{task}"),
                        fuel_used: n,
                        ..DecisionRecord::default()
                    };
                    ids.push(store.append_decision(&d).await.expect("append"));
                    // Interleave other writes and reads on the same tables.
                    if n % 10 == 0 {
                        let id = identity("a", &format!("task{task}-{n}"), "cluster");
                        store.put_identity(&id).await.expect("put identity");
                        store.list_decisions("a", 20, None).await.expect("list");
                    }
                }
                ids
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 400);
    let mut listed = 0;
    let mut before = None;
    while let Some(last) = {
        let page = store.list_decisions("a", 1000, before).await.unwrap();
        listed += page.len();
        page.last().map(|d| d.id)
    } {
        before = Some(last);
    }
    assert_eq!(listed, 400);
    assert_eq!(store.list_identities("a").await.unwrap().len(), 40);
}

#[tokio::test]
async fn api_key_secrets_never_reach_the_disk() {
    let (dir, store) = sqlite_store().await;
    let (secret, hash) = generate_api_key().unwrap();
    store.create_api_key(None, &hash, "operator").await.unwrap();
    store.close().await;
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        on_disk.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &[u8]| on_disk.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&hash), "the hash is what is stored");
    assert!(!contains(secret.as_bytes()));
    assert!(
        !contains(&secret.as_bytes()[3..]),
        "not even without its prefix"
    );
}

/// 64 decisions of tenant `a` of about 2 KB each: a full batch, about 130 KB of log.
fn large_batch() -> Vec<DecisionRecord> {
    (0..64)
        .map(|n| DecisionRecord {
            tenant: "a".into(),
            reason: Some("x".repeat(2000)),
            fuel_used: n,
            ..DecisionRecord::default()
        })
        .collect()
}
