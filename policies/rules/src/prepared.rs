//! The config as the host prepares it: parsed once, natively, when the host first sees it, and
//! handed to the guest in the SDK's prepared encoding (`tollgate_policy::prepared`), which the
//! guest reads back with no JSON. Each decision is a fresh instance that keeps nothing, so
//! without it every decision parsed the identity's JSON config again (about half of the guest's
//! time for the decision bench's config).
//!
//! The prepared config is a JSON string; the written one is the JSON object. Tenants never write
//! the prepared form: `validate-config` refuses it, so none is ever saved.
//!
//! ```text
//! config  := "rules1;" globs{5} binding binding age claims grant
//!            (subjects, namespaces, service_accounts, service_account_uids, audiences; pod, node)
//! globs   := "-" | "+" n ";" str{n}
//! binding := "-" | "+" ("0" | "1") globs
//! age     := "-" | "+" int ";"
//! claims  := "-" | "+" n ";" (str n ";" str{n}){n}
//! grant   := "-" | "+" n ";" str{n} ("-" | "+" n ";")
//! ```

use crate::config::{Binding, GrantConfig, RulesConfig};
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use tollgate_policy::prepared::{Handed, Reader, write_count, write_int, write_str};

/// What every prepared config starts with.
pub const MAGIC: &str = "rules1;";

/// The config the guest is handed: the JSON object a tenant writes, or the same config as the
/// host prepared it ([`prepare`]).
pub type Config = Handed<RulesConfig>;

/// A written config (JSON) as `builtin:rules` is handed it at each decision. `Err` when the
/// config is not one `validate-config` accepts; the host then hands it over as written, and the
/// guest answers as it always did. The prepared text is read back and compared with what was
/// parsed before it is returned.
pub fn prepare(config: &str) -> Result<String, String> {
    let Handed::Written(rules) = tollgate_policy::parse_config::<Config>(config)? else {
        return Err("the config is prepared already".into());
    };
    rules.validate()?;
    let text = write(&rules);
    if read(&text).as_ref() != Ok(&rules) {
        return Err("the prepared config does not read back as parsed".into());
    }
    serde_json::to_string(&text).map_err(|e| e.to_string())
}

/// The prepared text of `rules`.
pub fn write(rules: &RulesConfig) -> String {
    let mut out = String::from(MAGIC);
    for globs in [
        &rules.subjects,
        &rules.namespaces,
        &rules.service_accounts,
        &rules.service_account_uids,
        &rules.audiences,
    ] {
        write_globs(&mut out, globs.as_deref());
    }
    for binding in [&rules.pod, &rules.node] {
        optional(&mut out, binding.as_ref(), |out, binding| {
            out.push(if binding.required { '1' } else { '0' });
            write_globs(out, binding.names.as_deref());
        });
    }
    optional(&mut out, rules.max_token_age_seconds, |out, age| {
        write_int(out, age)
    });
    optional(&mut out, rules.claims.as_ref(), |out, claims| {
        write_count(out, claims.len());
        for (pointer, patterns) in claims {
            write_str(out, pointer);
            write_list(out, patterns);
        }
    });
    optional(&mut out, rules.grant.as_ref(), |out, grant| {
        write_list(out, &grant.scopes);
        optional(out, grant.ttl_seconds, |out, ttl| {
            write_count(out, ttl as usize)
        });
    });
    out
}

fn optional<T>(out: &mut String, value: Option<T>, write: impl FnOnce(&mut String, T)) {
    match value {
        None => out.push('-'),
        Some(value) => {
            out.push('+');
            write(out, value);
        }
    }
}

fn write_list(out: &mut String, items: &[String]) {
    write_count(out, items.len());
    items.iter().for_each(|item| write_str(out, item));
}

fn write_globs(out: &mut String, globs: Option<&[String]>) {
    optional(out, globs, write_list);
}

/// Reads a prepared config back: every truncation, bad tag and length past the end is an error
/// (a changed digit of a count or a length may still read, as other rules: the host reads back
/// and compares each text it writes).
pub fn read(text: &str) -> Result<RulesConfig, String> {
    let mut r = Reader::new(text, MAGIC)?;
    let mut globs = || -> Result<_, String> { present(&mut r)?.then(|| list(&mut r)).transpose() };
    let (subjects, namespaces, service_accounts) = (globs()?, globs()?, globs()?);
    let (service_account_uids, audiences) = (globs()?, globs()?);
    let binding = |r: &mut Reader<'_>| -> Result<_, String> {
        if !present(r)? {
            return Ok(None);
        }
        let required = match r.byte()? {
            b'0' => false,
            b'1' => true,
            _ => return Err(r.malformed()),
        };
        let names = present(r)?.then(|| list(r)).transpose()?;
        Ok(Some(Binding { required, names }))
    };
    let (pod, node) = (binding(&mut r)?, binding(&mut r)?);
    let max_token_age_seconds = present(&mut r)?.then(|| r.int()).transpose()?;
    let claims = if present(&mut r)? {
        let mut claims = BTreeMap::new();
        for _ in 0..r.items()? {
            let pointer = r.str()?.to_string();
            claims.insert(pointer, list(&mut r)?);
        }
        Some(claims)
    } else {
        None
    };
    let grant = if present(&mut r)? {
        let scopes = list(&mut r)?;
        let ttl_seconds = match present(&mut r)? {
            true => Some(u32::try_from(r.count()?).map_err(|_| r.malformed())?),
            false => None,
        };
        Some(GrantConfig {
            scopes,
            ttl_seconds,
        })
    } else {
        None
    };
    if !r.finished() {
        return Err(r.malformed());
    }
    Ok(RulesConfig {
        subjects,
        namespaces,
        service_accounts,
        service_account_uids,
        audiences,
        pod,
        node,
        max_token_age_seconds,
        claims,
        grant,
    })
}

fn present(r: &mut Reader<'_>) -> Result<bool, String> {
    match r.byte()? {
        b'-' => Ok(false),
        b'+' => Ok(true),
        _ => Err(r.malformed()),
    }
}

fn list(r: &mut Reader<'_>) -> Result<Vec<String>, String> {
    let n = r.items()?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(r.str()?.to_string());
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    /// Configs touching every key and shape: each must prepare, read back as parsed, and be
    /// refused by `validate-config` in its prepared form.
    const CONFIGS: &[&str] = &[
        r#"{"subjects": ["system:serviceaccount:prod:*"]}"#,
        r#"{"namespaces": ["prod", "team-*"], "service_accounts": ["a;b:c", "é-*"],
            "service_account_uids": ["u1"], "audiences": ["https://sts.example.com/x", ""],
            "pod": {"required": true, "names": ["api-*"]}, "node": {"required": false},
            "max_token_age_seconds": 3600,
            "claims": {"/kubernetes.io/pod/name": ["api-*"], "/x\"y": ["1", "true"]},
            "grant": {"scopes": ["a", "b"], "ttl_seconds": 900}}"#,
        r#"{"subjects": ["a"], "pod": {}, "grant": {}}"#,
        r#"{"namespaces": ["x"], "grant": {"scopes": [], "ttl_seconds": 4294967295}}"#,
    ];

    fn written(config: &str) -> RulesConfig {
        match tollgate_policy::parse_config::<Config>(config).unwrap() {
            Handed::Written(rules) => rules,
            Handed::Prepared(_) => panic!("{config} read as prepared"),
        }
    }

    #[test]
    fn every_config_reads_back_as_parsed() {
        for config in CONFIGS {
            let prepared = prepare(config).unwrap_or_else(|e| panic!("{config}: {e}"));
            let Handed::Prepared(text) =
                tollgate_policy::parse_config::<Config>(&prepared).unwrap()
            else {
                panic!("{prepared} read as written");
            };
            assert_eq!(read(&text), Ok(written(config)), "{prepared}");
        }
    }

    #[test]
    fn a_prepared_config_is_never_valid_for_a_tenant_to_write() {
        for config in CONFIGS {
            let prepared = prepare(config).unwrap();
            let error = tollgate_policy::validate_json::<crate::Rules>(&prepared).unwrap_err();
            assert!(error.contains("prepared"), "{error}");
            assert!(prepare(&prepared).is_err());
        }
    }

    /// A forged prepared config is read like any other: a malformed one is a denial (fail
    /// closed), never an allow with fewer rules.
    #[test]
    fn a_malformed_prepared_config_is_a_denial() {
        let request = tollgate_policy::Request::default();
        for forged in [r#""rules1;+9;""#, r#""rules1;""#, r#""rules2;-""#] {
            let decision = tollgate_policy::evaluate_json::<crate::Rules>(forged, &request);
            assert!(
                matches!(&decision, tollgate_policy::Decision::Deny(d) if d.code == "config"),
                "{forged}: {decision:?}"
            );
        }
    }

    #[test]
    fn configs_that_do_not_validate_are_not_prepared() {
        for config in [
            r#"{}"#,
            r#"{"subjects": []}"#,
            r#"{"subjects": ["[a"]}"#,
            "nope",
        ] {
            assert!(prepare(config).is_err(), "{config}");
        }
    }

    #[test]
    fn every_cut_and_corruption_is_an_error_not_a_panic() {
        let text = write(&written(CONFIGS[1]));
        assert_eq!(read(&text).as_ref(), Ok(&written(CONFIGS[1])));
        for cut in 0..text.len() {
            if text.is_char_boundary(cut) {
                assert!(read(&text[..cut]).is_err(), "{}", &text[..cut]);
            }
        }
        for (at, byte) in text.char_indices() {
            if matches!(byte, '+' | '-' | '0' | '1' | ';' | ':') {
                let bad = format!("{}?{}", &text[..at], &text[at + 1..]);
                // A corrupted tag or separator is an error, or at worst other rules (a count
                // or length digit): never a panic.
                let _ = read(&bad);
            }
        }
        assert!(read(&format!("{text}x")).is_err());
    }
}
