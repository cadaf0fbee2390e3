//! The server's signing keys over their lifetime, shared by every server on one database: the
//! store holds the key ring, and each server reads it back on every tick. A key is created
//! ahead of its use (its `created_at` is when it starts signing), so every replica publishes it
//! before any signs with it; exactly one server creates the first key and each next one (under
//! a lock in the store); a key that stopped signing stays published until every token it signed
//! has expired (no token lives longer than the server's longest issued lifetime).

use super::{Algorithm, KeyError, KeyRing, SigningKey};
use crate::store::{SigningKeyRecord, Store, StoreError};
use std::sync::RwLock;
use std::time::Duration;

/// The JWS `typ` of issued access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Why the signer could not load or rotate keys.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored signing key `{0}` has an unknown algorithm")]
    UnknownAlgorithm(String),
}

/// Why a token is not one of this server's, valid now.
#[derive(Debug, thiserror::Error)]
pub enum OwnTokenError {
    #[error("not a JWT this server signed with a published key")]
    UnknownKey,
    #[error("{0}")]
    Invalid(jsonwebtoken::errors::Error),
}

/// Signs issued tokens with the current key and publishes the key set.
pub struct Signer {
    store: Store,
    ring: RwLock<KeyRing>,
    alg: Algorithm,
    rotate_every: Duration,
    /// How long a key stays published after it stopped signing: the longest issued lifetime.
    publish_for: Duration,
}

fn parse_alg(alg: &str) -> Option<Algorithm> {
    match alg {
        "ES256" => Some(Algorithm::Es256),
        "RS256" => Some(Algorithm::Rs256),
        "EdDSA" => Some(Algorithm::EdDsa),
        _ => None,
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// How often a server reads the key ring back from the store (and checks for rotation):
/// every minute, or more often for a schedule of less than four minutes.
pub fn sync_period(rotate_every: Duration) -> Duration {
    (rotate_every / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// How long before it signs a new key is published: two sync periods, so every replica has
/// read it back (at most half the rotation period, for very short schedules).
fn publish_ahead(rotate_every: Duration) -> i64 {
    secs(sync_period(rotate_every) * 2).min(secs(rotate_every / 2))
}

impl Signer {
    /// Loads the unretired keys, creating the first one if there is none (one server does,
    /// however many start at once). Keys stay published `publish_for` after they stop signing.
    pub async fn load(
        store: Store,
        alg: Algorithm,
        rotate_every: Duration,
        publish_for: Duration,
        now: i64,
    ) -> Result<Self, SignerError> {
        let mut keys = stored_keys(&store).await?;
        if keys.is_empty() {
            let key = SigningKey::generate(alg, now)?;
            store.insert_signing_key_unless(&record(&key), None).await?;
            keys = stored_keys(&store).await?;
        }
        let signer = Self {
            store,
            ring: RwLock::new(KeyRing::new(keys)),
            alg,
            rotate_every,
            publish_for,
        };
        signer.prune(now).await?;
        Ok(signer)
    }

    /// Signs access-token claims with the key that signs now, typed `at+jwt` (RFC 9068).
    pub fn sign(&self, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        self.ring
            .read()
            .expect("key ring poisoned")
            .signing_key(crate::common::unix_now())
            .sign_with_typ(Some(ACCESS_TOKEN_TYP), claims)
    }

    /// The claims of `token` if one of the published keys signed it and it has not expired
    /// (no leeway: these are this server's own clocks). Audience and issuer are the caller's
    /// to check.
    pub fn verify(&self, token: &str) -> Result<serde_json::Value, OwnTokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(OwnTokenError::Invalid)?;
        let kid = header.kid.ok_or(OwnTokenError::UnknownKey)?;
        let (jwk, alg) = {
            let ring = self.ring.read().expect("key ring poisoned");
            let key = ring.find(&kid).ok_or(OwnTokenError::UnknownKey)?;
            (key.public_jwk(), key.alg())
        };
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(jwk).map_err(|_| OwnTokenError::UnknownKey)?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(OwnTokenError::Invalid)?;
        let mut validation = jsonwebtoken::Validation::new(alg.to_jsonwebtoken());
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iat", "jti", "iss"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation)
            .map(|data| data.claims)
            .map_err(OwnTokenError::Invalid)
    }

    /// The published key set: every key a live token may have been signed with, and the next.
    pub fn jwks(&self) -> serde_json::Value {
        self.ring.read().expect("key ring poisoned").jwks()
    }

    /// The algorithms of the published keys.
    pub fn algorithms(&self) -> Vec<String> {
        let ring = self.ring.read().expect("key ring poisoned");
        let mut algs: Vec<String> = ring.keys().iter().map(|k| k.alg().to_string()).collect();
        algs.dedup();
        algs
    }

    /// One tick: creates the next key when it is due (published ahead of its use; one server
    /// creates it), reads the ring back from the store (other servers' keys), and stops
    /// publishing keys whose tokens have all expired. Returns whether this server created a key.
    pub async fn rotate_if_due(&self, now: i64) -> Result<bool, SignerError> {
        let ahead = publish_ahead(self.rotate_every);
        let newest = self
            .ring
            .read()
            .expect("key ring poisoned")
            .keys()
            .iter()
            .map(SigningKey::created_at)
            .max()
            .unwrap_or(now);
        let next_at = newest.saturating_add(secs(self.rotate_every));
        let mut created = false;
        if now.saturating_add(ahead) >= next_at {
            let key = SigningKey::generate(self.alg, next_at.max(now + ahead))?;
            created = self
                .store
                .insert_signing_key_unless(&record(&key), Some(newest + 1))
                .await?;
            if created {
                tracing::info!(kid = %key.kid(), starts_at = key.created_at(), "next signing key created");
            }
        }
        self.sync().await?;
        self.prune(now).await?;
        Ok(created)
    }

    /// Reads the unretired keys back from the store.
    async fn sync(&self) -> Result<(), SignerError> {
        let keys = stored_keys(&self.store).await?;
        if keys.is_empty() {
            return Ok(());
        }
        let mut ring = self.ring.write().expect("key ring poisoned");
        let known: Vec<&str> = ring.keys().iter().map(SigningKey::kid).collect();
        if keys.len() != known.len() || keys.iter().any(|k| !known.contains(&k.kid())) {
            *ring = KeyRing::new(keys);
        }
        Ok(())
    }

    /// Drops the keys no live token was signed with from the ring, and marks them retired.
    async fn prune(&self, now: i64) -> Result<(), SignerError> {
        let oldest_kept = {
            let mut ring = self.ring.write().expect("key ring poisoned");
            if !ring.prune(now, self.publish_for) {
                return Ok(());
            }
            ring.keys()
                .iter()
                .map(SigningKey::created_at)
                .min()
                .unwrap_or(now)
        };
        self.store.retire_signing_keys_before(oldest_kept).await?;
        Ok(())
    }
}

/// The unretired keys in the store, parsed.
async fn stored_keys(store: &Store) -> Result<Vec<SigningKey>, SignerError> {
    let mut keys = Vec::new();
    for record in store.signing_keys().await? {
        if record.retired_at.is_some() {
            continue;
        }
        let alg = parse_alg(&record.alg)
            .ok_or_else(|| SignerError::UnknownAlgorithm(record.kid.clone()))?;
        keys.push(SigningKey::from_parts(
            &record.kid,
            alg,
            &record.private_pkcs8,
            record.created_at,
        )?);
    }
    Ok(keys)
}

fn record(key: &SigningKey) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: key.kid().to_owned(),
        alg: key.alg().to_string(),
        private_pkcs8: key.pkcs8_der().to_vec(),
        public_jwk: key.public_jwk(),
        created_at: key.created_at(),
        retired_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::unix_now;

    #[tokio::test]
    async fn generates_once_rotates_on_schedule_and_keeps_the_previous_key() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let day = Duration::from_secs(24 * 3600);
        let signer = Signer::load(store.clone(), Algorithm::Es256, day, day, 1_000)
            .await
            .unwrap();
        let first = signer.jwks()["keys"][0]["kid"].clone();
        // Loading again reuses the stored key instead of generating another.
        let again = Signer::load(store.clone(), Algorithm::Es256, day, day, 2_000)
            .await
            .unwrap();
        assert_eq!(again.jwks()["keys"][0]["kid"], first);

        assert!(
            !signer.rotate_if_due(1_000 + 3600).await.unwrap(),
            "rotated too early"
        );
        assert!(signer.rotate_if_due(1_000 + 2 * 86_400).await.unwrap());
        let keys = signer.jwks()["keys"].as_array().unwrap().clone();
        assert_eq!(keys.len(), 2, "current and previous are published");
        assert_ne!(keys[0]["kid"], first, "a new key is current");
        assert_eq!(keys[1]["kid"], first, "the previous key stays published");

        // The rotation survives a restart: the new key is current after reloading.
        let reloaded = Signer::load(store, Algorithm::Es256, day, day, 1_000 + 2 * 86_400)
            .await
            .unwrap();
        assert_eq!(reloaded.jwks()["keys"][0]["kid"], keys[0]["kid"]);
    }

    /// With rotation faster than tokens live, every key that signed a live token stays
    /// published, and its tokens verify, until they expire; then the key goes.
    #[tokio::test]
    async fn keys_stay_published_until_their_longest_token_expires() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let (rotate, longest) = (Duration::from_secs(10), Duration::from_secs(100));
        let signer = Signer::load(store.clone(), Algorithm::Es256, rotate, longest, 1_000)
            .await
            .unwrap();
        let claims =
            |iat: i64| serde_json::json!({"iss": "x", "jti": "j", "iat": iat, "exp": iat + 100});
        let now = unix_now();
        let old = signer.sign(&claims(now)).unwrap();
        let header = jsonwebtoken::decode_header(&old).unwrap();
        assert_eq!(header.typ.as_deref(), Some(ACCESS_TOKEN_TYP));
        let first = header.kid.unwrap();
        assert!(signer.rotate_if_due(1_010).await.unwrap());
        assert!(signer.rotate_if_due(1_020).await.unwrap());
        let published = |signer: &Signer| -> Vec<String> {
            signer.jwks()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(published(&signer).len(), 3, "two rotations later");
        assert!(published(&signer).contains(&first));
        signer
            .verify(&old)
            .expect("a token two rotations old verifies");
        // A restart keeps them too.
        let reloaded = Signer::load(store.clone(), Algorithm::Es256, rotate, longest, 1_020)
            .await
            .unwrap();
        assert!(published(&reloaded).contains(&first));
        // The first key stopped signing when the next began, at 1_015 (created at 1_010, five
        // seconds ahead of its use): its tokens are all dead at 1_115.
        signer.rotate_if_due(1_114).await.unwrap();
        assert!(published(&signer).contains(&first));
        signer.rotate_if_due(1_115).await.unwrap();
        assert!(!published(&signer).contains(&first));
        assert!(matches!(
            signer.verify(&old),
            Err(OwnTokenError::UnknownKey)
        ));
        let reloaded = Signer::load(store, Algorithm::Es256, rotate, longest, 1_115)
            .await
            .unwrap();
        assert!(!published(&reloaded).contains(&first));
    }
}
