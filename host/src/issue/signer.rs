//! The server's signing keys over their lifetime: loaded from the store, generated on first
//! start, rotated on a schedule with the previous key still published.

use super::{Algorithm, KeyError, KeyRing, SigningKey};
use crate::store::{SigningKeyRecord, Store, StoreError};
use std::sync::RwLock;
use std::time::Duration;

/// How many previous keys stay in the JWKS after a rotation.
const KEEP_PREVIOUS: usize = 1;

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

/// Signs issued tokens with the current key and publishes the key set.
pub struct Signer {
    store: Store,
    ring: RwLock<KeyRing>,
    alg: Algorithm,
    rotate_every: Duration,
}

fn parse_alg(alg: &str) -> Option<Algorithm> {
    match alg {
        "ES256" => Some(Algorithm::Es256),
        "RS256" => Some(Algorithm::Rs256),
        "EdDSA" => Some(Algorithm::EdDsa),
        _ => None,
    }
}

impl Signer {
    /// Loads the unretired keys, generating the first one if there is none.
    pub async fn load(
        store: Store,
        alg: Algorithm,
        rotate_every: Duration,
        now: i64,
    ) -> Result<Self, SignerError> {
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
        if keys.is_empty() {
            let key = SigningKey::generate(alg, now)?;
            store.insert_signing_key(&record(&key)).await?;
            keys.push(key);
        }
        Ok(Self {
            store,
            ring: RwLock::new(KeyRing::new(keys)),
            alg,
            rotate_every,
        })
    }

    /// Signs claims with the current key.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, KeyError> {
        self.ring
            .read()
            .expect("key ring poisoned")
            .current()
            .sign(claims)
    }

    /// The published key set: current and previous keys.
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

    /// Rotates when the current key is older than the schedule. Returns whether it did.
    pub async fn rotate_if_due(&self, now: i64) -> Result<bool, SignerError> {
        if !self
            .ring
            .read()
            .expect("key ring poisoned")
            .needs_rotation(now, self.rotate_every)
        {
            return Ok(false);
        }
        let key = SigningKey::generate(self.alg, now)?;
        self.store.insert_signing_key(&record(&key)).await?;
        let oldest_kept = {
            let mut ring = self.ring.write().expect("key ring poisoned");
            ring.rotate(key, KEEP_PREVIOUS);
            ring.keys()
                .iter()
                .map(SigningKey::created_at)
                .min()
                .unwrap_or(now)
        };
        self.store.retire_signing_keys_before(oldest_kept).await?;
        tracing::info!("signing key rotated");
        Ok(true)
    }
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

    #[tokio::test]
    async fn generates_once_rotates_on_schedule_and_keeps_the_previous_key() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let day = Duration::from_secs(24 * 3600);
        let signer = Signer::load(store.clone(), Algorithm::Es256, day, 1_000)
            .await
            .unwrap();
        let first = signer.jwks()["keys"][0]["kid"].clone();
        // Loading again reuses the stored key instead of generating another.
        let again = Signer::load(store.clone(), Algorithm::Es256, day, 2_000)
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
        let reloaded = Signer::load(store, Algorithm::Es256, day, 1_000 + 2 * 86_400)
            .await
            .unwrap();
        assert_eq!(reloaded.jwks()["keys"][0]["kid"], keys[0]["kid"]);
    }
}
