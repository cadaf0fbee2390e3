//! Tests of the store. Each check takes the URL of a fresh, empty database and runs as a test
//! against a SQLite file, and against PostgreSQL as an ignored test, which `tests/run.sh` runs
//! on a server of its own; by hand: `source tests/steps/postgres.sh && pg_start`, then
//! `cargo test -p tollgate --lib store:: -- --ignored` (each test makes and drops a database).

/// Runs each named check as a test of the same name, once per backend.
macro_rules! on_each_backend {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let dir = crate::store::tests::TempDir::new();
                    super::$check(&dir.url()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs a PostgreSQL server named by TOLLGATE_TEST_POSTGRES_URL"]
                async fn $check() {
                    let db = tollgate_tests::postgres::PgDatabase::create().await;
                    super::$check(&db.url).await;
                    db.drop_database().await;
                }
            )*
        }
    };
}

mod identities;
mod isolation;
mod lifecycle;
mod logs;
mod records;
mod replicas;
mod sessions;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::{IdentityRecord, IssuerRecord, PolicyConfig, Store};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tollgate-store-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            super::now()
        ));
        std::fs::create_dir_all(&path).expect("create temporary directory");
        TempDir(path)
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("tollgate.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh store in a new SQLite file; keep the directory alive as long as the store.
async fn sqlite_store() -> (TempDir, Store) {
    let dir = TempDir::new();
    let store = Store::open(&dir.url()).await.expect("open store");
    (dir, store)
}

fn issuer(tenant: &str, name: &str, url: &str) -> IssuerRecord {
    IssuerRecord {
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        issuer_url: url.to_owned(),
        source: json!({"discovery": url}),
        created_at: 0,
        updated_at: 0,
    }
}

fn identity(tenant: &str, id: &str, issuer: &str) -> IdentityRecord {
    IdentityRecord {
        tenant: tenant.to_owned(),
        id: id.to_owned(),
        uid: String::new(),
        issuer: issuer.to_owned(),
        accepted_audiences: vec![],
        token_audiences: vec!["https://api.example".to_owned()],
        policy: "builtin:rules".to_owned(),
        config: PolicyConfig::from(&json!({"subjects": ["system:serviceaccount:prod:deployer"]})),
        scopes: vec!["deploy".to_owned()],
        ttl_seconds: 600,
        max_ttl_seconds: 3600,
        num_uses: 0,
        trusted_cidrs: vec![],
        fuel: None,
        resolved_policy: "builtin:rules".to_owned(),
        cases: Vec::new(),
        shadow: None,
        created_at: 0,
        updated_at: 0,
    }
}

/// A tenant with issuer `cluster`.
async fn tenant_with_issuer(store: &Store, tenant: &str) {
    store.create_tenant(tenant).await.expect("create tenant");
    store
        .put_issuer(&issuer(tenant, "cluster", "https://k8s.example"))
        .await
        .expect("put issuer");
}
