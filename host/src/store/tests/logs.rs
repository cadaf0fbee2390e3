//! Signing keys and the audit log.

use serde_json::json;

use crate::common::digest;
use crate::store::{
    DecisionLog, DecisionRecord, MAX_DECISION_PAGE, SigningKeyRecord, Store, StoreError,
};

on_each_backend!(
    signing_keys,
    decisions,
    decision_pages,
    decision_log_batches
);

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

async fn signing_keys(url: &str) {
    let store = &Store::open(url).await.unwrap();
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

async fn decisions(url: &str) {
    let store = &Store::open(url).await.unwrap();
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
        event: crate::store::Event::Renewal,
        subject_jti: Some("jti-0".to_owned()),
        session: Some("jti-0".to_owned()),
        session_ends: Some(1_700_003_600),
        logs: vec!["info: matched".to_owned()],
        shadow: Some(serde_json::json!({"agrees": false})),
        request: Some(r#"{"claims":{"sub":"s"},"now":1}"#.to_owned()),
    };
    let id = store.append_decision(&full).await.unwrap();
    let denied = decision("a", 1);
    let id2 = store.append_decision(&denied).await.unwrap();
    assert!(id2 > id);
    let listed = store.list_decisions("a", 10, None).await.unwrap();
    // Pages leave the policy request out: replay alone reads it.
    let shown = DecisionRecord {
        id,
        request: None,
        ..full.clone()
    };
    assert_eq!(
        listed,
        [DecisionRecord { id: id2, ..denied }, shown.clone()]
    );
    assert!(store.list_decisions("a", 0, None).await.unwrap().is_empty());
    let replayable = |tenant: &'static str| store.replayable_decisions(tenant, "deployer", 0, 10);
    assert_eq!(
        replayable("a").await.unwrap(),
        [DecisionRecord { id, ..full }],
        "only the record that kept its request, with it"
    );
    assert!(
        replayable("b").await.unwrap().is_empty(),
        "another tenant's"
    );
    assert_eq!(
        store
            .shadowed_decisions("a", "deployer", 0, 10)
            .await
            .unwrap(),
        [shown]
    );
    // The replay window: older requests are forgotten, the records stay.
    assert_eq!(store.prune_requests(1_700_000_000).await.unwrap(), 0);
    assert_eq!(store.prune_requests(1_700_000_001).await.unwrap(), 1);
    assert!(replayable("a").await.unwrap().is_empty());
    assert_eq!(store.list_decisions("a", 10, None).await.unwrap().len(), 2);
}

async fn decision_pages(url: &str) {
    let store = &Store::open(url).await.unwrap();
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

/// Appends that arrive together are written together, each exactly once, in arrival order;
/// every append returns only once its record can be read back.
async fn decision_log_batches(url: &str) {
    let store = Store::open(url).await.unwrap();
    let log = DecisionLog::start(store.clone());
    // More than one batch's worth, all in flight at once.
    let appends: Vec<_> = (0..150)
        .map(|n| {
            let (log, store) = (log.clone(), store.clone());
            tokio::spawn(async move {
                log.append(decision("a", n)).await.unwrap();
                let page = store
                    .list_decisions("a", MAX_DECISION_PAGE, None)
                    .await
                    .unwrap();
                assert!(
                    page.iter().any(|d| d.fuel_used == n),
                    "{n} not readable after append"
                );
            })
        })
        .collect();
    for append in appends {
        append.await.unwrap();
    }
    let all = store
        .list_decisions("a", MAX_DECISION_PAGE, None)
        .await
        .unwrap();
    let mut fuel: Vec<i64> = all.iter().map(|d| d.fuel_used).collect();
    fuel.sort_unstable();
    assert_eq!(fuel, (0..150).collect::<Vec<_>>());
    // One batch keeps its order: ids rise with the records' position.
    let batch: Vec<_> = (200..203).map(|n| decision("b", n)).collect();
    store.append_decisions(&batch).await.unwrap();
    let listed = store.list_decisions("b", 10, None).await.unwrap();
    let newest_first: Vec<i64> = listed.iter().map(|d| d.fuel_used).collect();
    assert_eq!(newest_first, [202, 201, 200]);
    assert_eq!(
        listed[0],
        DecisionRecord {
            id: listed[0].id,
            ..batch[2].clone()
        }
    );
}

/// On a SQLite file the audit log's writer commits on a connection of its own, whose commits
/// the pool reads (`decision_log_batches` above reads each record back); `sqlite::memory:` is
/// one connection's database, so there it keeps to the pool.
#[tokio::test]
async fn the_writer_has_a_connection_of_its_own_on_a_file_only() {
    let (_dir, store) = super::sqlite_store().await;
    assert!(store.writer_connection().await.is_some());
    let memory = Store::open("sqlite::memory:").await.unwrap();
    assert!(memory.writer_connection().await.is_none());
    let log = DecisionLog::start(memory.clone());
    log.append(decision("m", 1)).await.unwrap();
    assert_eq!(memory.list_decisions("m", 10, None).await.unwrap().len(), 1);
}

/// A closed store takes no record, though the writer's own connection is still open: no token
/// is handed out without its record (the exchange refuses it).
#[tokio::test]
async fn a_closed_file_store_takes_no_record() {
    let (_dir, store) = super::sqlite_store().await;
    let log = DecisionLog::start(store.clone());
    log.append(decision("a", 1)).await.unwrap();
    store.close().await;
    let refused = log.append(decision("a", 2)).await;
    assert!(refused.is_err(), "a closed store took a record");
}
