//! Persistence for the exchange server: SQLite by default (one file, created and migrated on
//! first start), PostgreSQL when several replicas share state.
//!
//! One [`Store`] wraps an `sqlx` [`AnyPool`]; every statement is written once, in SQL both
//! backends accept (`$1` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT times, JSON as TEXT).
//! Only the schema differs (BLOB vs BYTEA, how the audit log numbers rows), so each backend has
//! its own migration set under `host/migrations/`.
//!
//! Isolation between tenants is in the queries: every statement about a tenant's records has the
//! tenant in its key or its `WHERE` clause.

mod api_keys;
mod cache;
mod changes;
mod decision_log;
mod decisions;
mod error;
mod identities;
mod issuers;
mod migrations;
mod models;
mod policies;
mod sessions;
mod settings;
mod signing_keys;
mod tenants;
#[cfg(test)]
mod tests;
mod versions;

use std::sync::Arc;
use std::time::Duration;

use cache::ReadCache;
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Row};

pub use api_keys::{generate_api_key, hash_api_key};
pub use changes::Change;
pub use decision_log::DecisionLog;
pub use decisions::{EXPORT_LAG_SECONDS, MAX_DECISION_PAGE};
pub use error::StoreError;
pub use models::{
    ApiKey, DecisionRecord, Event, IdentityRecord, IssuerRecord, KeyRole, PolicyConfig, PolicyMeta,
    PolicyRecord, PolicyVersion, Shadow, SigningKeyRecord, Tenant,
};
pub use sessions::Consumed;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or `sqlite::memory:`, for tests).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The server's database. Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    cache: Arc<ReadCache>,
    /// The database URL, kept for the change listener (PostgreSQL only).
    url: Option<Arc<str>>,
    /// A SQLite file's URL, for the audit log's writer to open a connection of its own
    /// ([`Store::writer_connection`]).
    sqlite_file: Option<Arc<str>>,
}

/// How long a PostgreSQL query waits for a connection before it fails as unavailable.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Connections per replica.
const POSTGRES_CONNECTIONS: u32 = 16;

/// How long another replica's change to an identity or issuer can go unseen (PostgreSQL).
const REPLICA_CACHE_TTL: Duration = Duration::from_secs(1);

impl Store {
    /// Connects to `url` and brings its schema up to date.
    ///
    /// `sqlite://path/tollgate.db` (relative) or `sqlite:///var/lib/tollgate/tollgate.db`:
    /// the file and its directory are created if missing, and the database is put in WAL mode
    /// (readers never wait for the writer; concurrent writers wait up to 5 s for each other).
    /// `sqlite::memory:` keeps everything in one connection's memory. `postgres://...` as
    /// PostgreSQL documents it.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let store = match backend {
            Backend::Sqlite => open_sqlite(url).await?,
            Backend::Postgres => Store {
                // A query waits at most this long for a connection: while the database is
                // down, exchanges fail fast (503) instead of hanging for sqlx's 30 s.
                pool: AnyPoolOptions::new()
                    .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                    .max_connections(POSTGRES_CONNECTIONS)
                    .connect(url)
                    .await?,
                backend,
                cache: Arc::new(ReadCache::new(Some(REPLICA_CACHE_TTL))),
                url: Some(Arc::from(url)),
                sqlite_file: None,
            },
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        migrations::migrator(self.backend)
            .await?
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// Reads identities and issuers into the read cache, so that a started server answers
    /// its first exchanges without database reads; how many identities were kept. Only for
    /// SQLite, where this server is the only writer and cached entries do not expire; with
    /// PostgreSQL nothing is read (entries would expire within a second).
    pub async fn warm_cache(&self) -> Result<usize, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        self.warm_issuers().await?;
        self.warm_identities().await
    }

    /// Streams `query`'s rows, parsed, to `keep` until it refuses one (the cache does once a
    /// write happened since the read began: what is read after may be older); how many it kept.
    async fn warm<T>(
        &self,
        query: &str,
        parse: fn(&AnyRow) -> Result<T, StoreError>,
        mut keep: impl FnMut(&T) -> bool,
    ) -> Result<usize, StoreError> {
        let mut rows = sqlx::query(query).fetch(&self.pool);
        let mut kept = 0;
        while let Some(row) = rows.try_next().await? {
            if !keep(&parse(&row)?) {
                break;
            }
            kept += 1;
        }
        Ok(kept)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether [`Store::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// A connection outside the pool, for the audit log's writer, when the database is a
    /// SQLite file (`None` for PostgreSQL and `sqlite::memory:`, or when it cannot be opened:
    /// the writer then uses the pool). Every batch through the pool waited for a connection
    /// and, when it was handed back, for sqlx's ping of it: two more round trips to the
    /// connection's thread per commit, for a file handle that cannot have hung up. A connection
    /// of its own also keeps the log's pages in one page cache.
    pub async fn writer_connection(&self) -> Option<AnyConnection> {
        let url = self.sqlite_file.as_deref()?;
        let opened = async {
            let mut connection = AnyConnection::connect(url).await?;
            sqlite_settings(&mut connection).await?;
            Ok::<_, sqlx::Error>(connection)
        };
        match opened.await {
            Ok(connection) => Some(connection),
            Err(error) => {
                tracing::warn!(%error, "the audit log's writer commits through the pool");
                None
            }
        }
    }
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        // Anything else may be a mistyped URL with a password in it: echo only a plausible scheme.
        _ if scheme.len() <= 16
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            Err(StoreError::UnsupportedUrl(scheme.to_owned()))
        }
        _ => Err(StoreError::UnsupportedUrl("?".to_owned())),
    }
}

async fn open_sqlite(url: &str) -> Result<Store, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    let mode = params
        .split('&')
        .find_map(|pair| pair.strip_prefix("mode="));
    let in_memory = path == ":memory:" || mode == Some("memory");

    let mut url = url.to_owned();
    // No ping before each use of a pooled connection (sqlx's default): a SQLite connection is a
    // file handle on a thread of its own and cannot have hung up, and the ping was a second
    // round trip to that thread for every statement: one decision record's commit took 190 µs
    // with it and 130 µs without (docs/benchmarks-history.md). PostgreSQL's pool keeps it.
    let mut options = AnyPoolOptions::new().test_before_acquire(false);
    if in_memory {
        // Each connection to `:memory:` is a database of its own: keep exactly one, forever.
        options = options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    } else {
        // Durability and checkpoints are per connection, so set on each.
        options = options.after_connect(|connection, _| Box::pin(sqlite_settings(connection)));
        if mode.is_none() {
            url.push(if params.is_empty() { '?' } else { '&' });
            url.push_str("mode=rwc");
        }
        if let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|cause| StoreError::CreateDir {
                path: dir.display().to_string(),
                cause,
            })?;
        }
    }
    let pool = options.connect(&url).await?;
    if !in_memory {
        // Persistent in the file: set once here, before other connections exist, because
        // switching modes needs an exclusive lock that the busy timeout cannot wait for.
        sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_optional(&pool)
            .await?;
        tokio::spawn(checkpoints(pool.clone()));
    }
    Ok(Store {
        pool,
        backend: Backend::Sqlite,
        // The server is the only writer: nothing changes behind the cache.
        cache: Arc::new(ReadCache::new(None)),
        url: None,
        sqlite_file: (!in_memory).then(|| Arc::from(url.as_str())),
    })
}

/// What every connection to a SQLite file sets.
///
/// In WAL mode, NORMAL syncs the log at checkpoints instead of at every commit: a commit
/// survives the process dying at once, and only an OS crash or power loss can take the last
/// ones back. FULL (sqlx's default) fsyncs once per exchange, since every exchange appends a
/// decision record, and capped the server at about 1,000 exchanges/s (BENCHMARKS.md). Per
/// connection, so set on each.
async fn sqlite_settings(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&mut *connection)
        .await?;
    // Checkpoints run in `checkpoints` below, not inside whichever commit crosses the WAL size
    // limit: that commit (and every exchange waiting on its decision record) would wait for
    // the checkpoint's sync.
    sqlx::query("PRAGMA wal_autocheckpoint = 0")
        .execute(&mut *connection)
        .await?;
    // When the log starts over, its file is cut back to this size, so one burst of writes
    // does not keep gigabytes on disk.
    sqlx::query(&format!("PRAGMA journal_size_limit = {WAL_KEEP_BYTES}"))
        .execute(connection)
        .await
        .map(drop)
}

/// What the WAL file is cut back to when the log starts over (`journal_size_limit`).
const WAL_KEEP_BYTES: i64 = 64 << 20;

/// Log frames (pages) past which the background checkpoint waits for readers and writers so
/// that the log starts over (`RESTART`), instead of copying what it can (`PASSIVE`): under a
/// steady stream of writes a passive checkpoint never catches up, the log never starts over,
/// and it grew to 2 GB while the scale bench created 100,000 identities (BENCHMARKS.md).
/// `TRUNCATE` would also empty the file, but cutting and regrowing it made each such
/// checkpoint take 30-70 ms instead of 3, with every exchange's audit record waiting.
///
/// 1,024 frames (4 MiB with 4 KiB pages): the log starts over several times a second under
/// load and its file stops growing. With 16,384 (64 MiB), the file grew between restarts and
/// the audit log's commits waited on the checkpoints' syncs: at 80% of the exchange bench's
/// peak, 360 exchanges waited over 20 ms for their record; with 1,024, none (BENCHMARKS.md,
/// the stall tables).
const WAL_RESTART_FRAMES: i64 = 1024;

/// How long a `RESTART` waits for readers of older snapshots before it gives up (the next tick
/// tries again). While it waits, it holds new writers back: with the connection's own busy
/// timeout (5 s), one long read (an export page, a replay) would have stopped every exchange's
/// audit record that long.
const RESTART_BUSY_MS: u32 = 10;

/// How often the WAL is copied back into the database file. A checkpoint syncs what it
/// copied, and while the disk syncs, the audit log's commits wait (the exchanges' answers with
/// them): the less each checkpoint copies, the shorter those waits. Once a second, at 80% of
/// the exchange bench's peak, 88 exchanges waited over 50 ms for their record and 296 over
/// 20 ms; every 100 ms, none and 2 (BENCHMARKS.md, the stall tables). A checkpoint with nothing
/// to copy syncs nothing.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`], until the pool is
/// closed.
async fn checkpoints(pool: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let started = std::time::Instant::now();
        if let Err(error) = checkpoint(&pool, WAL_RESTART_FRAMES).await {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
        crate::metrics::observe_checkpoint(started.elapsed());
    }
}

/// One checkpoint: `PASSIVE` (it waits for nobody), then `RESTART` when the log still holds
/// more than `restart_frames` frames. A `RESTART` holds new writers back while it finishes
/// and gives up after [`RESTART_BUSY_MS`] if readers stay; the next tick tries again. Returns
/// whether the log will start over at the next write (its file then shrinks to
/// `WAL_KEEP_BYTES`).
async fn checkpoint(pool: &AnyPool, restart_frames: i64) -> Result<bool, sqlx::Error> {
    if passive_checkpoint(pool).await? <= restart_frames {
        return Ok(false);
    }
    let mut connection = pool.acquire().await?;
    let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *connection)
        .await?;
    sqlx::query(&format!("PRAGMA busy_timeout = {RESTART_BUSY_MS}"))
        .execute(&mut *connection)
        .await?;
    let row = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
        .fetch_one(&mut *connection)
        .await;
    let restored = sqlx::query(&format!("PRAGMA busy_timeout = {timeout}"))
        .execute(&mut *connection)
        .await;
    if let Err(error) = restored {
        // Not back in the pool with the short timeout.
        let _ = connection.close().await;
        return Err(error);
    }
    let busy: i64 = row?.try_get(0)?;
    Ok(busy == 0)
}

/// Copies what it can of the WAL without waiting for anyone; the frames the log holds.
async fn passive_checkpoint(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    // One row: busy (0 or 1), frames in the log, frames copied to the database.
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?
        .try_get(1)
}

pub(crate) use crate::common::unix_now as now;

/// `bytes` random bytes from the system generator, hex-encoded.
fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| StoreError::Random)?;
    Ok(hex::encode(buf))
}

fn to_json<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Invalid(format!("{what} cannot be stored as JSON: {e}")))
}

fn from_json<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, e))
}

/// Reads a BIGINT column into an unsigned or narrower integer.
fn get_int<T: TryFrom<i64>>(row: &AnyRow, column: &'static str) -> Result<T, StoreError> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| StoreError::corrupt(column, format!("{value} is out of range")))
}

/// Converts an unsigned count to BIGINT, refusing what it cannot hold.
fn to_bigint<T: TryInto<i64> + Copy + std::fmt::Display>(
    what: &'static str,
    value: T,
) -> Result<i64, StoreError> {
    value
        .try_into()
        .map_err(|_| StoreError::Invalid(format!("{what} {value} is too large")))
}
