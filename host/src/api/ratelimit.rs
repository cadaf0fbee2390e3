//! Token-bucket rate limits for the exchange endpoints: per tenant, per identity, and per
//! client address for requests that fail verification.
//!
//! # Which key can be trusted before verification
//!
//! The limit has to be checked before the expensive work (signature verification, the
//! policy), but at that point nothing in the request is authenticated: the tenant and
//! identity it names are the caller's choice. Charging the named tenant would let anyone who
//! can reach the server empty tenant B's budget with garbage tokens naming B's identities and
//! lock B's workloads out. So the buckets are *checked* before the work and *charged* after
//! it, against the key the outcome proves:
//!
//! - a request whose subject token verified (allowed, or refused later by the policy, the
//!   scopes or the audience) is charged to its identity and that identity's tenant. Only a
//!   holder of a token from the tenant's own issuer can spend the tenant's budget, so a
//!   tenant's flood slows that tenant alone;
//! - a request that did not verify (unknown identity, bad token) is charged to the client
//!   address, the one thing TCP makes hard to forge. A garbage flood slows its sender, not
//!   the tenant it names. Behind a proxy every caller shares the proxy's address: raise or
//!   turn off that limit there. IPv6 clients are keyed by their /64, which one host usually
//!   owns whole.
//!
//! Concurrent requests may all pass the check before any is charged, so a burst can overshoot
//! by the number of requests in flight (bounded by `--max-connections`). The bucket then goes
//! into debt and the debt is paid back in full by refusing later requests: the sustained rate
//! holds exactly. Reserving a token before verification instead would close the overshoot but
//! let in-flight garbage naming a tenant hold that tenant's tokens, which is the attack above.
//!
//! Memory is bounded: buckets exist only for keys that were charged, a bucket that has
//! refilled is indistinguishable from a missing one and is evicted, and each family holds at
//! most [`MAX_KEYS`] buckets (a new key past that is not tracked: failing open beats letting
//! an attacker who fills the table lock out every new caller).

pub use crate::config::{Rate, RateLimits};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most buckets per family.
pub const MAX_KEYS: usize = 65_536;

/// The longest `Retry-After` given, whatever the configured rate.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// What a request is charged to.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// The identity's tenant and `tenant/id`, once the identity is known.
    pub identity: Option<(String, String)>,
    /// The client address (IPv6 by its /64), when the server knows it.
    pub client: Option<String>,
}

impl Keys {
    /// The key of a client address.
    pub fn client_key(address: &str) -> Option<String> {
        match address.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => Some(v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Some(v4.to_string()),
                None => {
                    let s = v6.segments();
                    Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
                }
            },
        }
    }
}

/// The per-tenant, per-identity and per-client buckets.
pub struct RateLimiter {
    tenants: Buckets,
    identities: Buckets,
    clients: Buckets,
}

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            tenants: Buckets::new(limits.tenant),
            identities: Buckets::new(limits.identity),
            clients: Buckets::new(limits.client_failures),
        }
    }

    /// Before any work: is the client over its failure budget? Err carries when to retry.
    pub fn check_client(&self, keys: &Keys) -> Result<(), Duration> {
        match &keys.client {
            Some(client) => self.clients.check(client, Instant::now()),
            None => Ok(()),
        }
    }

    /// Before verification: is the identity or its tenant over budget?
    pub fn check_identity(&self, keys: &Keys) -> Result<(), Duration> {
        let Some((tenant, identity)) = &keys.identity else {
            return Ok(());
        };
        let now = Instant::now();
        let results = [
            self.tenants.check(tenant, now),
            self.identities.check(identity, now),
        ];
        match results.iter().filter_map(|r| r.err()).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// After the work: charges the identity and tenant when the token verified, else the
    /// client.
    pub fn charge(&self, keys: &Keys, verified: bool) {
        let now = Instant::now();
        match (&keys.identity, &keys.client) {
            (Some((tenant, identity)), _) if verified => {
                self.tenants.charge(tenant, now);
                self.identities.charge(identity, now);
            }
            (_, Some(client)) if !verified => self.clients.charge(client, now),
            _ => {}
        }
    }

    /// Drops every bucket that has refilled.
    pub fn evict_idle(&self) {
        let now = Instant::now();
        for family in [&self.tenants, &self.identities, &self.clients] {
            family.evict_idle(now);
        }
    }

    /// Buckets held, over all families (for tests).
    pub fn len(&self) -> usize {
        [&self.tenants, &self.identities, &self.clients]
            .iter()
            .map(|f| f.lock().len())
            .sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

struct Buckets {
    rate: Rate,
    map: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    fn new(rate: Rate) -> Self {
        Self {
            rate,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        // A panic while holding this lock cannot leave a bucket half-updated.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tokens in `bucket` at `now`.
    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.rate.per_second).min(self.rate.capacity())
    }

    fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if !self.rate.enabled() {
            return Ok(());
        }
        let Some(bucket) = self.lock().get(key).copied() else {
            return Ok(());
        };
        let tokens = self.refilled(&bucket, now);
        if tokens >= 1.0 {
            return Ok(());
        }
        let wait = (1.0 - tokens) / self.rate.per_second;
        Err(Duration::try_from_secs_f64(wait)
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT))
    }

    fn charge(&self, key: &str, now: Instant) {
        if !self.rate.enabled() {
            return;
        }
        let mut map = self.lock();
        if !map.contains_key(key) && map.len() >= MAX_KEYS {
            map.retain(|_, bucket| self.refilled(bucket, now) < self.rate.capacity());
            if map.len() >= MAX_KEYS {
                tracing::warn!("rate limiter is full; a new caller is not limited");
                return;
            }
        }
        let capacity = self.rate.capacity();
        let bucket = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let tokens = self.refilled(bucket, now);
        *bucket = Bucket {
            tokens: tokens - 1.0,
            updated: now,
        };
    }

    fn evict_idle(&self, now: Instant) {
        let capacity = self.rate.capacity();
        self.lock()
            .retain(|_, bucket| self.refilled(bucket, now) < capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> RateLimiter {
        let rate = Rate { per_second, burst };
        RateLimiter::new(RateLimits {
            tenant: rate,
            identity: rate,
            client_failures: rate,
        })
    }

    fn keys(tenant: &str, client: &str) -> Keys {
        Keys {
            identity: Some((tenant.into(), format!("{tenant}/deployer"))),
            client: Keys::client_key(client),
        }
    }

    #[test]
    fn a_burst_then_refusal_with_a_retry_time() {
        let limiter = limiter(1.0, 3);
        let a = keys("a", "10.0.0.1");
        for _ in 0..3 {
            assert!(limiter.check_identity(&a).is_ok());
            limiter.charge(&a, true);
        }
        let wait = limiter.check_identity(&a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another tenant, and the same client's failure budget, are untouched.
        assert!(limiter.check_identity(&keys("b", "10.0.0.1")).is_ok());
        assert!(limiter.check_client(&a).is_ok());
    }

    #[test]
    fn unverified_requests_are_charged_to_the_client_not_the_named_tenant() {
        let limiter = limiter(1.0, 2);
        let forged = keys("victim", "192.0.2.7");
        for _ in 0..10 {
            limiter.charge(&forged, false);
        }
        assert!(limiter.check_identity(&forged).is_ok());
        assert!(limiter.check_client(&forged).is_err());
        assert!(limiter.check_client(&keys("victim", "192.0.2.8")).is_ok());
    }

    #[test]
    fn debt_is_paid_back_and_idle_buckets_are_evicted() {
        let limiter = limiter(1000.0, 2);
        let a = keys("a", "10.0.0.1");
        for _ in 0..20 {
            limiter.charge(&a, true);
        }
        let wait = limiter.check_identity(&a).unwrap_err();
        assert!(wait >= Duration::from_millis(15), "{wait:?}");
        // 18 in debt at 1000/s: paid back within a few tens of milliseconds.
        std::thread::sleep(Duration::from_millis(100));
        assert!(limiter.check_identity(&a).is_ok());
        assert_eq!(limiter.len(), 2);
        limiter.evict_idle();
        assert!(limiter.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_makes_room_from_idle_keys() {
        let slow = Buckets::new(Rate {
            per_second: 0.001,
            burst: 1,
        });
        let now = Instant::now();
        for n in 0..=MAX_KEYS {
            slow.charge(&format!("10.{n}"), now);
        }
        assert_eq!(slow.lock().len(), MAX_KEYS);
        // The key past the bound is not tracked, so not limited (fail open).
        assert!(slow.check(&format!("10.{MAX_KEYS}"), now).is_ok());
        assert!(slow.check("10.0", now).is_err());

        let fast = Buckets::new(Rate {
            per_second: 1000.0,
            burst: 1,
        });
        for n in 0..MAX_KEYS {
            fast.charge(&format!("10.{n}"), now);
        }
        // A second later every bucket has refilled: a new key evicts them instead of being
        // turned away.
        let later = now + Duration::from_secs(1);
        fast.charge("new", later);
        assert_eq!(fast.lock().len(), 1);
        assert!(fast.check("new", later).is_err());
    }

    #[test]
    fn off_means_never_limited_and_nothing_stored() {
        let limiter = RateLimiter::new(RateLimits::OFF);
        let a = keys("a", "10.0.0.1");
        for _ in 0..100 {
            limiter.charge(&a, true);
            limiter.charge(&a, false);
        }
        assert!(limiter.check_identity(&a).is_ok() && limiter.check_client(&a).is_ok());
        assert!(limiter.is_empty());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let one = Keys::client_key("2001:db8:1:2:aaaa::1").unwrap();
        let two = Keys::client_key("2001:db8:1:2:bbbb::9").unwrap();
        assert_eq!(one, two);
        assert_eq!(Keys::client_key("::ffff:192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(Keys::client_key("not an address"), None);
    }
}
