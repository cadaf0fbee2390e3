//! `tollgate serve`: the exchange server.

mod head;
mod http;

use crate::api::{self, AppState, RateLimiter};
use crate::config::ServeArgs;
use crate::exchange::{ExchangeService, unix_now};
use crate::issue::Signer;
use crate::policy::{Limits, PolicyEngine, PolicyRegistry};
use crate::store::{DecisionLog, Store, generate_api_key, hash_api_key};
use crate::verify::{Verifier, VerifySettings};
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory `{}`", args.data_dir.display()))?;
    let store = Store::open(&args.database_url())
        .await
        .context("cannot open the store")?;

    let fuel = args.policy_fuel.min(crate::policy::limits::MAX_FUEL);
    let limits = Limits {
        fuel,
        ..Limits::default()
    };
    let engine =
        PolicyEngine::new(limits)?.with_artifact_cache(&args.data_dir.join("artifacts"))?;
    let registry = Arc::new(
        PolicyRegistry::new(Arc::new(engine)).context("cannot load the built-in policies")?,
    );
    load_policies(&store, &registry).await?;

    let verifier = Verifier::new(VerifySettings {
        leeway: Duration::from_secs(args.leeway_seconds),
        max_lifetime: Duration::from_secs(args.max_token_lifetime_seconds),
        allow_insecure: args.allow_insecure_issuers,
        ..VerifySettings::default()
    })?;
    let rotate_every = Duration::from_secs(args.key_rotation_seconds);
    let signer =
        Arc::new(Signer::load(store.clone(), args.signing_alg, rotate_every, unix_now()).await?);
    bootstrap_operator_key(&store, args.operator_key.as_deref()).await?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let public_url = match &args.public_url {
        Some(_) => args.public_url(),
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
    });
    tokio::spawn(rotate_keys(signer));
    tokio::spawn(warm_cache(exchange.store.clone()));
    let limiter = Arc::new(RateLimiter::new(args.rate_limits()));
    tokio::spawn(evict_idle(limiter.clone()));
    let state = AppState { exchange, limiter };
    let limits = api::RequestLimits {
        max_body: args.max_body_bytes,
        exchange_deadline: Duration::from_secs(args.request_timeout_seconds.max(1)),
    };
    let app = api::router(state, limits);
    let transport = http::Transport {
        header_timeout: Duration::from_secs(args.header_timeout_seconds.max(1)),
        max_connections: (args.max_connections > 0).then_some(args.max_connections),
    };
    let stop = crate::dev::shutdown_signal();
    eprintln!("tollgate listening on http://{local} (public URL {public_url})");
    http::serve(listener, app, transport, stop).await?;
    eprintln!("tollgate stopped");
    Ok(())
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
                store
                    .create_api_key(None, &hash, "configured operator key")
                    .await?;
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

async fn rotate_keys(signer: Arc<Signer>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(error) = signer.rotate_if_due(unix_now()).await {
            tracing::error!(%error, "signing key rotation failed");
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
