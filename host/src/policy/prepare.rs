//! Configs a stock policy is handed prepared: `builtin:cel` gets its expressions parsed once,
//! by the host, instead of parsing them again at every decision (each decision is a fresh
//! instance that keeps nothing, and parsing was 46% of its instructions).
//!
//! The host runs the `cel` crate's own parser natively (`cel::prepare`), on a config
//! `validate-config` accepted, and hands the guest the program in a compact encoding the guest
//! reads back without tokenizing. What a tenant writes, sees and saves is always the JSON
//! config; the guest refuses a prepared program in `validate-config`, so none is ever saved. A
//! config that does not prepare is handed over as written, and the guest decides on it as it
//! always did (with the same answer, at the old cost).
//!
//! The parser is tenant input running outside the sandbox: it bounds its recursion and the
//! height of the trees it builds (chains of operators and fields count), so no walk of a tree
//! can overflow the host's stack. Its work is bounded too: a config reaches it only after the
//! guest's `validate-config` parsed the same text in the sandbox within its fuel (an identity,
//! a shadow candidate and a replay's config are all validated first), and the native parse is
//! the same code, faster.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Written configs prepared at most: past this, the cache starts again empty (a server with
/// more CEL configs than this in use prepares some of them more than once).
const MAX_PREPARED: usize = 4096;

/// How one policy's configs are prepared, with the configs prepared so far.
pub struct Preparer {
    prepare: fn(&str) -> Result<String, String>,
    /// Written config -> prepared config, or `None` when it does not prepare.
    prepared: Mutex<HashMap<String, Option<String>>>,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer").finish_non_exhaustive()
    }
}

impl Preparer {
    /// `builtin:cel`'s.
    pub fn cel() -> Self {
        Self::new(cel::prepare)
    }

    fn new(prepare: fn(&str) -> Result<String, String>) -> Self {
        Self {
            prepare,
            prepared: Mutex::default(),
        }
    }

    /// The config to hand the guest for `written`. A config not prepared yet is prepared
    /// outside the lock, so other decisions do not wait for it.
    pub fn config<'a>(&self, written: &'a str) -> Cow<'a, str> {
        let cached = self
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(written)
            .cloned();
        if let Some(entry) = cached {
            return entry.map_or(Cow::Borrowed(written), Cow::Owned);
        }
        let entry = (self.prepare)(written).ok();
        let mut prepared = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        if prepared.len() >= MAX_PREPARED {
            prepared.clear();
        }
        prepared.insert(written.to_owned(), entry.clone());
        entry.map_or(Cow::Borrowed(written), Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::cases::{self, CaseFile};
    use crate::policy::registry::{BUILTIN_CEL_WASM, load_builtin_cel};
    use crate::policy::{Limits, PolicyEngine};

    /// `builtin:cel` as the server loads it against the same component parsing its configs
    /// itself: every case of `policies/cel/cases.yaml` answers the same, for less fuel (fuel
    /// is deterministic: a preparation that silently fell back would cost the same).
    #[test]
    fn builtin_cel_decides_the_same_prepared_for_less_fuel() {
        let engine = PolicyEngine::new(Limits::default()).unwrap();
        let prepared = load_builtin_cel(&engine).unwrap();
        let written = engine.load(BUILTIN_CEL_WASM).unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/cel/cases.yaml");
        let file = CaseFile::load(std::path::Path::new(path)).unwrap();
        let fast = cases::run(&engine, &prepared, &file);
        let slow = cases::run(&engine, &written, &file);
        for (fast, slow) in fast.iter().zip(&slow) {
            assert!(fast.passed && slow.passed, "{fast:?} {slow:?}");
            assert_eq!(
                (&fast.got, &fast.code, &fast.scopes),
                (&slow.got, &slow.code, &slow.scopes)
            );
            if slow.fuel_used > 0 {
                assert!(
                    fast.fuel_used < slow.fuel_used,
                    "{}: {} against {}",
                    fast.name,
                    fast.fuel_used,
                    slow.fuel_used
                );
            }
        }
    }

    #[test]
    fn cel_configs_are_prepared_once_and_the_rest_handed_over_as_written() {
        let preparer = Preparer::cel();
        let written = r#"{"condition": "assertion.sub == 'x'"}"#;
        let prepared = preparer.config(written);
        assert!(prepared.starts_with("\"cel1;"), "{prepared}");
        assert_eq!(preparer.config(written), prepared);
        assert_eq!(preparer.prepared.lock().unwrap().len(), 1);
        for unprepared in [
            r#"{"condition": "assertion.sub =="}"#,
            "not json",
            "\"cel1;n\"",
        ] {
            assert_eq!(preparer.config(unprepared), unprepared);
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let preparer = Preparer::cel();
        for n in 0..MAX_PREPARED + 10 {
            preparer.config(&format!(r#"{{"condition": "now > {n}"}}"#));
        }
        assert!(preparer.prepared.lock().unwrap().len() <= MAX_PREPARED);
    }
}
