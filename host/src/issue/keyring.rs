//! The published key set: the current signing key and the previous keys that tokens still
//! in flight may have been signed with.

use super::keys::SigningKey;
use serde_json::{Value, json};
use std::time::Duration;

/// The current signing key and the previous keys still published in the JWKS.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// Newest first: `keys[0]` is the current key.
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// Builds a ring from stored keys in any order; the newest (`created_at`, the later one
    /// in `keys` on a tie) becomes current.
    ///
    /// # Panics
    ///
    /// When `keys` is empty: a ring always has a key to sign with. Generate one first.
    pub fn new(mut keys: Vec<SigningKey>) -> KeyRing {
        assert!(!keys.is_empty(), "a key ring needs at least one key");
        // Stable sort on the reversed order keeps "later wins" for equal creation times.
        keys.reverse();
        keys.sort_by_key(|key| std::cmp::Reverse(key.created_at()));
        KeyRing { keys }
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The key that signs at `now`: the newest created at or before it (a newer key is
    /// published ahead of its use), or the oldest when every key is newer.
    pub fn signing_key(&self, now: i64) -> &SigningKey {
        self.keys
            .iter()
            .find(|key| key.created_at() <= now)
            .unwrap_or_else(|| self.keys.last().expect("a ring has a key"))
    }

    /// The previous keys, newest first: still published, no longer used to sign.
    pub fn previous(&self) -> &[SigningKey] {
        &self.keys[1..]
    }

    /// Every key, current first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The key with this `kid`, current or previous.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|key| key.kid() == kid)
    }

    /// The JWK Set to publish: `{"keys": [current, previous...]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(SigningKey::public_jwk).collect::<Vec<_>>() })
    }

    /// Whether the current key is at least `rotate_every` old at `now` (seconds since the epoch).
    pub fn needs_rotation(&self, now: i64, rotate_every: Duration) -> bool {
        let age = now.saturating_sub(self.current().created_at());
        age >= i64::try_from(rotate_every.as_secs()).unwrap_or(i64::MAX)
    }

    /// Drops the previous keys whose every token has expired at `now`: a key stopped signing
    /// when the next newer one was created, and no token lives longer than `longest_token`.
    /// Returns whether any key was dropped.
    pub fn prune(&mut self, now: i64, longest_token: Duration) -> bool {
        let longest = i64::try_from(longest_token.as_secs()).unwrap_or(i64::MAX);
        let before = self.keys.len();
        let mut stopped_at = Vec::with_capacity(before);
        stopped_at.push(i64::MAX);
        stopped_at.extend(self.keys.iter().map(SigningKey::created_at));
        let mut index = 0;
        self.keys.retain(|_| {
            let alive = stopped_at[index].saturating_add(longest) > now;
            index += 1;
            alive
        });
        self.keys.len() != before
    }

    /// Makes `new_key` current and keeps at most `keep_previous` of the older keys published,
    /// so tokens signed just before the rotation still verify until they expire.
    /// Rotating to a key already in the ring only moves it to the front.
    pub fn rotate(&mut self, new_key: SigningKey, keep_previous: usize) {
        self.keys.retain(|key| key.kid() != new_key.kid());
        self.keys.insert(0, new_key);
        self.keys.truncate(keep_previous.saturating_add(1));
    }
}
