//! Configs a stock policy is handed prepared: `builtin:cel` gets its expressions parsed once,
//! by the host, instead of parsing them again at every decision (each decision is a fresh
//! instance that keeps nothing, and parsing was 46% of its instructions), and `builtin:rules`
//! its JSON config (about half of its guest's time for the decision bench's config).
//!
//! The host runs the policy crate's own parser natively (`cel::prepare`, `rules::prepare`), on
//! a config `validate-config` accepted, and hands the guest the config in the SDK's compact
//! encoding (`tollgate_policy::prepared`), which the guest reads back without tokenizing and
//! without JSON. What a tenant writes, sees and saves is always the JSON
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

    /// `builtin:rules`'.
    pub fn rules() -> Self {
        Self::new(rules::prepare)
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
    use crate::policy::registry::{
        BUILTIN_CEL_WASM, BUILTIN_RULES_WASM, load_builtin_cel, load_builtin_rules,
    };
    use crate::policy::{Limits, PolicyEngine};

    /// A stock policy as the server loads it against the same component parsing its configs
    /// itself: every case of its `cases.yaml` answers the same; with `each_cheaper`, each for
    /// less fuel (fuel is deterministic: a preparation that silently fell back would cost the
    /// same).
    fn decides_the_same_prepared(
        load: fn(&PolicyEngine) -> Result<crate::policy::PolicyModule, crate::policy::LoadError>,
        wasm: &[u8],
        cases: &str,
        each_cheaper: bool,
    ) {
        let engine = PolicyEngine::new(Limits::default()).unwrap();
        let prepared = load(&engine).unwrap();
        let written = engine.load(wasm).unwrap();
        let path = format!("{}/../policies/{cases}", env!("CARGO_MANIFEST_DIR"));
        let file = CaseFile::load(std::path::Path::new(&path)).unwrap();
        let fast = cases::run(&engine, &prepared, &file);
        let slow = cases::run(&engine, &written, &file);
        assert!(!fast.is_empty());
        for (fast, slow) in fast.iter().zip(&slow) {
            assert!(fast.passed && slow.passed, "{fast:?} {slow:?}");
            assert_eq!(
                (&fast.got, &fast.code, &fast.scopes),
                (&slow.got, &slow.code, &slow.scopes)
            );
            if each_cheaper && slow.fuel_used > 0 {
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
    fn builtin_cel_decides_the_same_prepared_for_less_fuel() {
        decides_the_same_prepared(load_builtin_cel, BUILTIN_CEL_WASM, "cel/cases.yaml", true);
    }

    /// A `rules` config of one key costs about as much prepared as written (the cases mostly
    /// set one key: 6,504 against 6,382 fuel for `subjects` alone); one with every key, as the
    /// decision bench's, costs over a fifth less.
    #[test]
    fn builtin_rules_decides_the_same_prepared_for_less_fuel() {
        decides_the_same_prepared(
            load_builtin_rules,
            BUILTIN_RULES_WASM,
            "rules/cases.yaml",
            false,
        );
        let engine = PolicyEngine::new(Limits::default()).unwrap();
        let module = load_builtin_rules(&engine).unwrap();
        let written = serde_json::json!({
            "subjects": ["system:serviceaccount:prod:*"], "namespaces": ["prod", "team-*"],
            "service_accounts": ["deployer", "ci-*"], "audiences": ["tollgate"],
            "pod": {"required": true, "names": ["api-*"]}, "node": {"names": ["pool-*"]},
            "max_token_age_seconds": 3600, "claims": {"/kubernetes.io/pod/name": ["api-*"]},
            "grant": {"scopes": ["registry.pull"], "ttl_seconds": 900}
        })
        .to_string();
        let claims = serde_json::json!({
            "iss": "https://k8s.example", "sub": "system:serviceaccount:prod:deployer",
            "aud": ["tollgate"], "iat": 1_700_000_000, "exp": 1_700_003_600,
            "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "deployer", "uid": "u"},
                              "pod": {"name": "api-1", "uid": "p"}}
        });
        let context = crate::policy::ExchangeContext {
            now: 1_700_000_100,
            ..Default::default()
        };
        let decide = |config: &str| {
            let request = crate::policy::build_request(&claims, context.clone(), config).unwrap();
            engine.evaluate(&module, &request)
        };
        let prepared = module.config(&written);
        assert!(prepared.starts_with("\"rules1;"), "{prepared}");
        let (fast, slow) = (decide(&prepared), decide(&written));
        assert!(fast.decision.is_allow(), "{:?}", fast.decision);
        assert_eq!(fast.decision, slow.decision);
        assert!(
            fast.fuel_used * 10 < slow.fuel_used * 9,
            "{} against {}",
            fast.fuel_used,
            slow.fuel_used
        );
    }

    #[test]
    fn rules_configs_are_prepared_and_the_rest_handed_over_as_written() {
        let preparer = Preparer::rules();
        let written = r#"{"namespaces": ["prod"]}"#;
        let prepared = preparer.config(written);
        assert!(prepared.starts_with("\"rules1;"), "{prepared}");
        for unprepared in [r#"{"namespaces": []}"#, "not json", "\"rules1;+\""] {
            assert_eq!(preparer.config(unprepared), unprepared);
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
