//! The per-issuer cache of fetched key sets.
//!
//! Keys are cached per `cache_key` (tenant and issuer). An unknown `kid` or keys older than the
//! maximum age trigger a refetch, at most once per refetch interval per issuer, so a flood of
//! tokens with random key ids costs the issuer one request per interval. When a refetch fails
//! (issuer down, 5xx, 429, timeout, or a broken answer) the last good keys stay in use.

use super::VerifyError;
use super::jwks::KeySet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cache of key sets by issuer.
pub struct KeyCache {
    entries: Mutex<HashMap<(String, String), Arc<Entry>>>,
    refetch_interval: Duration,
    max_age: Duration,
}

#[derive(Default)]
struct Entry {
    state: Mutex<State>,
    /// Held while fetching, so that one issuer sees one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: Option<(Arc<KeySet>, Instant)>,
    last_attempt: Option<Instant>,
    last_error: Option<VerifyError>,
}

impl Entry {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeyCache {
    /// An empty cache.
    pub fn new(refetch_interval: Duration, max_age: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            refetch_interval,
            max_age,
        }
    }

    /// The entry of an issuer. The URL is part of the key so that keys fetched for an issuer
    /// are never used for another one registered later under the same name.
    fn entry(&self, cache_key: &str, issuer_url: &str) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .entry((cache_key.to_owned(), issuer_url.to_owned()))
            .or_default()
            .clone()
    }

    /// Forgets an issuer's keys (when the issuer is deleted or reconfigured).
    pub fn forget(&self, cache_key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(key, _), _| key != cache_key);
    }

    /// The key set to verify a token with key id `kid`, fetching with `fetch` when the cached
    /// set lacks that key or is old and the rate limit allows. The returned set may still lack
    /// the key; the caller's selection then reports the unknown `kid`.
    pub async fn keys<F, Fut>(
        &self,
        cache_key: &str,
        issuer_url: &str,
        kid: Option<&str>,
        fetch: F,
    ) -> Result<Arc<KeySet>, VerifyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<KeySet, VerifyError>>,
    {
        let entry = self.entry(cache_key, issuer_url);
        let wanted = |set: &KeySet| kid.map_or(!set.keys.is_empty(), |kid| set.has_kid(kid));
        let cached = entry.state().keys.clone();
        let guard = match &cached {
            Some((set, at)) if wanted(set) => {
                if at.elapsed() < self.max_age {
                    return Ok(set.clone());
                }
                // Old but usable: refresh unless someone else already is, never wait for it.
                match entry.fetching.try_lock() {
                    Ok(guard) => guard,
                    Err(_) => return Ok(set.clone()),
                }
            }
            _ => entry.fetching.lock().await,
        };
        let (cached, may_fetch, last_error) = {
            let state = entry.state();
            let may_fetch = state
                .last_attempt
                .is_none_or(|at| at.elapsed() >= self.refetch_interval);
            (state.keys.clone(), may_fetch, state.last_error.clone())
        };
        // A fetch that finished while this task waited may have brought the key.
        if let Some((set, at)) = &cached
            && wanted(set)
            && (at.elapsed() < self.max_age || !may_fetch)
        {
            return Ok(set.clone());
        }
        if !may_fetch {
            return match cached {
                Some((set, _)) => Ok(set),
                None => Err(last_error.unwrap_or(VerifyError::NoUsableKeys)),
            };
        }
        entry.state().last_attempt = Some(Instant::now());
        let result = fetch().await.and_then(|set| {
            if set.keys.is_empty() {
                Err(VerifyError::NoUsableKeys)
            } else {
                Ok(Arc::new(set))
            }
        });
        drop(guard);
        crate::metrics::count_jwks_fetch(result.is_ok());
        let mut state = entry.state();
        match result {
            Ok(set) => {
                state.keys = Some((set.clone(), Instant::now()));
                state.last_error = None;
                Ok(set)
            }
            Err(err) => {
                tracing::warn!(issuer = cache_key, error = %err, "refreshing issuer keys failed");
                state.last_error = Some(err.clone());
                match &state.keys {
                    Some((set, _)) => Ok(set.clone()),
                    None => Err(err),
                }
            }
        }
    }
}
