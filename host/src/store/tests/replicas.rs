//! What servers sharing a database rely on, on each backend: one first key and one next key
//! however many servers race, shared settings, the export cursor and retention.

use super::super::{DecisionRecord, SigningKeyRecord, Store};

on_each_backend!(
    of_racing_servers_one_creates_the_first_key_and_one_the_next,
    the_first_server_records_the_shared_settings,
    the_export_hands_out_each_record_once_in_order,
    retention_prunes_only_old_records,
);

fn key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        private_pkcs8: vec![1, 2, 3],
        public_jwk: serde_json::json!({"kid": kid}),
        created_at,
        retired_at: None,
    }
}

async fn of_racing_servers_one_creates_the_first_key_and_one_the_next(url: &str) {
    let store = Store::open(url).await.unwrap();
    let race = |newer_than: Option<i64>, created_at: i64| {
        let tries: Vec<_> = (0..8)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .insert_signing_key_unless(
                            &key(&format!("k{created_at}-{n}"), created_at),
                            newer_than,
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        async move {
            let mut created = 0;
            for attempt in tries {
                created += usize::from(attempt.await.unwrap());
            }
            created
        }
    };
    assert_eq!(race(None, 100).await, 1, "one first key");
    assert_eq!(race(Some(101), 200).await, 1, "one next key");
    assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    // A server that saw an older ring does not rotate again.
    assert!(
        !store
            .insert_signing_key_unless(&key("late", 300), Some(101))
            .await
            .unwrap()
    );
}

async fn the_first_server_records_the_shared_settings(url: &str) {
    let store = Store::open(url).await.unwrap();
    assert_eq!(store.setting("public_url").await.unwrap(), None);
    assert_eq!(
        store
            .claim_setting("public_url", "https://a")
            .await
            .unwrap(),
        "https://a"
    );
    assert_eq!(
        store
            .claim_setting("public_url", "https://b")
            .await
            .unwrap(),
        "https://a"
    );
}

fn record(tenant: &str, at: i64) -> DecisionRecord {
    DecisionRecord {
        tenant: tenant.into(),
        identity: "x".into(),
        at,
        ..Default::default()
    }
}

async fn the_export_hands_out_each_record_once_in_order(url: &str) {
    let store = Store::open(url).await.unwrap();
    let now = crate::common::unix_now();
    store
        .append_decisions(&[record("a", 1), record("b", 2), record("a", 3)])
        .await
        .unwrap();
    // Just written: not handed out yet.
    assert!(store.export_decisions(0, 10, now).await.unwrap().is_empty());
    let later = now + super::super::EXPORT_LAG_SECONDS + 1;
    let first = store.export_decisions(0, 2, later).await.unwrap();
    assert_eq!(first.iter().map(|d| d.at).collect::<Vec<_>>(), [1, 2]);
    let rest = store
        .export_decisions(first[1].id, 10, later)
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|d| d.at).collect::<Vec<_>>(), [3]);
    assert!(
        store
            .export_decisions(rest[0].id, 10, later)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn retention_prunes_only_old_records(url: &str) {
    let store = Store::open(url).await.unwrap();
    let records: Vec<DecisionRecord> = (0..2500).map(|n| record("a", n)).collect();
    for chunk in records.chunks(60) {
        store.append_decisions(chunk).await.unwrap();
    }
    // Exchanges keep appending new records while the old ones are pruned.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..50 {
                store
                    .append_decisions(&[record("a", 10_000 + n)])
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    assert_eq!(store.prune_decisions(2100).await.unwrap(), 2100);
    writer.await.unwrap();
    let left = store.list_decisions("a", 1000, None).await.unwrap();
    assert_eq!(left.len(), 450);
    assert!(left.iter().all(|d| d.at >= 2100));
}
