//! The composition root: every part of `tollgate serve` (store, policy engine and registry,
//! verifier, signer, decision log, rate limiter, router and background tasks) built from its
//! settings, in one place that the `serve` command and the tests both call.

use crate::admin::AdminService;
use crate::api::{self, AppState, RateLimiter};
use crate::common::cidrs::Cidrs;
use crate::common::unix_now;
use crate::config::ServeArgs;
use crate::exchange::ExchangeService;
use crate::issue::Signer;
use crate::policy::{Limits, PolicyEngine, PolicyRegistry};
use crate::store::{DecisionLog, Store, generate_api_key, hash_api_key};
use crate::transport::{self, Transport};
use crate::verify::{Verifier, VerifySettings};
use anyhow::Context;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A built server: the router and the background tasks that keep it (key rotation, cache
/// warm-up, rate-limit eviction). The tasks stop when the `App` is dropped.
pub struct App {
    pub router: Router,
    /// The public URL (`iss` of issued tokens), without a trailing slash.
    pub public_url: String,
    /// What the handlers share (for tests that look behind the HTTP surface).
    pub state: AppState,
    transport: Transport,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl App {
    /// Builds everything `settings` describe. `local` is the address the server listens on:
    /// the public URL when none is configured.
    pub async fn build(settings: &ServeArgs, local: SocketAddr) -> anyhow::Result<App> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create data directory `{}`",
                settings.data_dir.display()
            )
        })?;
        let store = open_store(&settings.database_url()).await?;
        check_shared_settings(&store, settings).await?;

        let fuel = settings.policy_fuel.min(crate::policy::limits::MAX_FUEL);
        let limits = Limits {
            fuel,
            module_bytes: settings.policy_max_module_bytes,
            memory_bytes: settings.policy_memory_bytes,
            compile_deadline: Duration::from_secs(settings.policy_compile_seconds.max(1)),
            ..Limits::default()
        };
        let engine =
            PolicyEngine::new(limits)?.with_artifact_cache(&settings.data_dir.join("artifacts"))?;
        let registry = Arc::new(
            PolicyRegistry::new(Arc::new(engine)).context("cannot load the built-in policies")?,
        );
        load_policies(&store, &registry).await?;

        let verifier = Verifier::new(VerifySettings {
            leeway: Duration::from_secs(settings.leeway_seconds),
            max_lifetime: Duration::from_secs(settings.max_token_lifetime_seconds),
            allow_insecure: settings.allow_insecure_issuers,
            ..VerifySettings::default()
        })?;
        let rotate_every = Duration::from_secs(settings.key_rotation_seconds);
        let signer = Arc::new(
            Signer::load(
                store.clone(),
                settings.signing_alg,
                rotate_every,
                Duration::from_secs(settings.max_issued_ttl_seconds.into()),
                unix_now(),
            )
            .await?,
        );
        bootstrap_operator_key(&store, settings.operator_key.as_deref()).await?;

        let public_url = match &settings.public_url {
            Some(_) => settings.public_url(),
            None => format!("http://{local}"),
        };
        let exchange = Arc::new(ExchangeService {
            decisions: DecisionLog::start(store.clone()),
            store,
            verifier,
            policies: registry,
            signer: signer.clone(),
            public_url: public_url.clone(),
            fuel,
            max_issued_ttl: settings.max_issued_ttl_seconds,
            module_loads: tokio::sync::Mutex::new(()),
            keep_requests: settings.replay_retention_days > 0,
        });
        let limiter = Arc::new(RateLimiter::new(settings.rate_limits()));
        let mut tasks = vec![
            tokio::spawn(rotate_keys(signer, rotate_every)),
            tokio::spawn(prune_sessions(exchange.store.clone())),
            tokio::spawn(prune_decisions(
                exchange.store.clone(),
                settings.decision_retention_days,
            )),
            tokio::spawn(prune_requests(
                exchange.store.clone(),
                settings.replay_retention_days,
            )),
            tokio::spawn(warm_cache(exchange.store.clone())),
            tokio::spawn(evict_idle(limiter.clone())),
        ];
        if let Some(changes) = exchange.store.follow_changes() {
            tasks.push(tokio::spawn(forget_changed_issuers(
                changes,
                exchange.verifier.clone(),
            )));
        }
        let admin = Arc::new(AdminService::new(exchange.clone()));
        let trusted_proxies = Cidrs::parse(&settings.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?;
        let state = AppState {
            exchange,
            admin,
            limiter,
            trusted_proxies: Arc::new(trusted_proxies),
        };
        let limits = api::RequestLimits {
            max_body: settings.max_body_bytes,
            max_upload: settings
                .max_body_bytes
                .max(settings.policy_max_module_bytes),
            exchange_deadline: Duration::from_secs(settings.request_timeout_seconds.max(1)),
        };
        let transport = Transport {
            header_timeout: Duration::from_secs(settings.header_timeout_seconds.max(1)),
            max_connections: (settings.max_connections > 0).then_some(settings.max_connections),
        };
        Ok(App {
            router: api::router(state.clone(), limits),
            public_url,
            state,
            transport,
            tasks,
        })
    }

    /// Serves on `listener` until `shutdown` completes, then drains open connections.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        transport::serve(listener, self.router.clone(), self.transport, shutdown).await
    }
}

/// Opens the store; a PostgreSQL server that cannot be reached yet (a replica started before
/// its database) is retried with backoff, for as long as it takes, saying so in the log.
async fn open_store(url: &str) -> anyhow::Result<Store> {
    let mut delay = Duration::from_millis(250);
    loop {
        match Store::open(url).await {
            Ok(store) => return Ok(store),
            Err(error) if error.is_unavailable() => {
                tracing::warn!(%error, retry_in = ?delay, "the database is unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error).context("cannot open the store"),
        }
    }
}

/// What every server on one database must agree on, refused at start when it differs from
/// what the database recorded: the public URL (`iss` of issued tokens and the tenants'
/// audiences), when one is configured, and the signing algorithm.
async fn check_shared_settings(store: &Store, settings: &ServeArgs) -> anyhow::Result<()> {
    let mut shared = vec![(
        "signing_alg",
        settings.signing_alg.to_string(),
        "--signing-alg",
    )];
    if settings.public_url.is_some() {
        shared.push(("public_url", settings.public_url(), "--public-url"));
    }
    for (name, ours, flag) in shared {
        let recorded = store.claim_setting(name, &ours).await?;
        if recorded != ours {
            anyhow::bail!(
                "{flag} is `{ours}`, but this database's servers use `{recorded}`: every server \
                 on one database must use the same {flag} (start this one with \
                 {flag} {recorded}, or give it a database of its own)"
            );
        }
    }
    Ok(())
}

/// Drops the cached keys of issuers another server changed. (Lost notifications need nothing
/// here: discovered keys are cached per issuer URL, so a changed URL misses the cache anyway,
/// and a source that is not discovery keeps no keys.)
async fn forget_changed_issuers(
    mut changes: tokio::sync::mpsc::Receiver<crate::store::Change>,
    verifier: Verifier,
) {
    use crate::store::Change;
    while let Some(change) = changes.recv().await {
        match change {
            Change::Issuer { tenant, name } => verifier.forget(&format!("{tenant}/{name}")),
            Change::Unknown | Change::Identity { .. } => {}
        }
    }
}

/// Deletes decision records older than the retention, every minute (0 days: keep forever).
async fn prune_decisions(store: Store, retention_days: u32) {
    every_minute_by_age(retention_days, "old decision records pruned", |before| {
        let store = store.clone();
        async move { store.prune_decisions(before).await }
    })
    .await
}

/// Forgets the policy requests of records older than the replay window, every minute (0 days:
/// none are kept).
async fn prune_requests(store: Store, retention_days: u32) {
    every_minute_by_age(retention_days, "old policy requests forgotten", |before| {
        let store = store.clone();
        async move { store.prune_requests(before).await }
    })
    .await
}

/// Runs `prune(now - retention)` every minute and logs what it did (`done` when it did
/// something); returns at once for a retention of 0 days.
async fn every_minute_by_age<F, Fut>(retention_days: u32, done: &'static str, prune: F)
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, crate::store::StoreError>>,
{
    if retention_days == 0 {
        return;
    }
    let keep = i64::from(retention_days) * 24 * 3600;
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match prune(unix_now() - keep).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, retention_days, "{done}"),
            Err(error) => tracing::warn!(%error, "could not prune by age ({done})"),
        }
    }
}

/// Fills the store's read cache in the background: the server is ready before it is done.
async fn warm_cache(store: Store) {
    let started = std::time::Instant::now();
    match store.warm_cache().await {
        Ok(identities) => {
            tracing::info!(identities, elapsed = ?started.elapsed(), "identity cache warmed")
        }
        Err(error) => tracing::warn!(%error, "could not warm the identity cache"),
    }
}

/// Loads every uploaded module (from the artifact cache when it can) before serving.
async fn load_policies(store: &Store, registry: &Arc<PolicyRegistry>) -> anyhow::Result<()> {
    let policies = store.all_policies().await?;
    let count = policies.len();
    for policy in policies {
        let (tenant, digest) = (policy.tenant.clone(), policy.digest.clone());
        let size = usize::try_from(policy.size).unwrap_or(usize::MAX);
        let cached = registry.clone();
        // The artifact alone when it is cached; the module's bytes only when it must compile.
        let loaded = match tokio::task::spawn_blocking(move || {
            cached.load_cached(&policy.tenant, &policy.digest, size)
        })
        .await?
        {
            Some(loaded) => loaded.map(drop),
            None => match store.get_policy(&tenant, &digest).await? {
                Some(record) => {
                    let registry = registry.clone();
                    let owner = tenant.clone();
                    tokio::task::spawn_blocking(move || {
                        registry.load(&owner, &record.bytes).map(drop)
                    })
                    .await?
                }
                None => continue,
            },
        };
        if let Err(error) = loaded {
            tracing::error!(%tenant, %digest, %error, "stored policy no longer loads");
        }
    }
    tracing::info!(count, "policy modules loaded");
    Ok(())
}

/// Makes sure an operator key exists: the configured one, or a new one printed once.
async fn bootstrap_operator_key(store: &Store, configured: Option<&str>) -> anyhow::Result<()> {
    match configured {
        Some(secret) => {
            let hash = hash_api_key(secret);
            if store.find_api_key(&hash).await?.is_none() {
                // Replicas starting at once with the same key: whichever stores it, it is there.
                match store
                    .create_api_key(None, &hash, "configured operator key")
                    .await
                {
                    Ok(_) | Err(crate::store::StoreError::Conflict(_)) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        None if store.count_operator_keys().await? == 0 => {
            let (secret, hash) = generate_api_key()?;
            store
                .create_api_key(None, &hash, "generated operator key")
                .await?;
            eprintln!("generated operator API key (shown once, keep it): {secret}");
        }
        None => {}
    }
    Ok(())
}

/// Rotates the signing key on schedule, reads back the keys other replicas made, and stops
/// publishing keys whose tokens all expired (`issue::sync_period`).
async fn rotate_keys(signer: Arc<Signer>, rotate_every: Duration) {
    let mut tick = tokio::time::interval(crate::issue::sync_period(rotate_every));
    loop {
        tick.tick().await;
        if let Err(error) = signer.rotate_if_due(unix_now()).await {
            tracing::error!(%error, "signing key rotation failed");
        }
    }
}

/// Forgets use counts and revocations of sessions that have ended, every minute.
async fn prune_sessions(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(error) = store.prune_sessions(unix_now()).await {
            tracing::warn!(%error, "could not prune ended sessions");
        }
    }
}

/// Forgets rate-limit state of keys that went quiet, so memory follows active callers only.
async fn evict_idle(limiter: Arc<RateLimiter>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        limiter.evict_idle();
    }
}
