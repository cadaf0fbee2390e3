//! The `tollgate policy test` harness: a YAML file of cases run through the real sandbox.
//!
//! See docs/CONTRACTS.md (contract 3) for the format. Each case's token claims go through
//! [`build_request`] and the module through [`PolicyEngine`], exactly as in the server.

use super::engine::PolicyEngine;
use super::module::PolicyModule;
use super::outcome::{Decision, Evaluation};
use super::request::{ExchangeContext, build_request};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// `now` when neither the case nor the token says otherwise (2023-11-14T22:13:20Z).
const DEFAULT_NOW: i64 = 1_700_000_000;

/// A cases file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The module, relative to the cases file. The command line overrides it.
    pub module: Option<PathBuf>,
    /// The identity's policy config used by every case without its own.
    #[serde(default)]
    pub config: Value,
    /// Fuel per decision (default: the engine's).
    pub fuel: Option<u64>,
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// The token's claims (as verified by the host). `exp` defaults to an hour after `now`.
    #[serde(default)]
    pub token: Map<String, Value>,
    #[serde(default)]
    pub exchange: ExchangeSpec,
    /// Overrides the file's config for this case.
    pub config: Option<Value>,
    pub expect: Expect,
    /// With `allow`: the exact scopes granted (order does not matter).
    pub scopes: Option<Vec<String>>,
    /// With `allow`: the TTL cap granted.
    pub ttl_seconds: Option<u32>,
    /// With `allow`: claims the grant must carry (others may be present).
    pub claims: Option<Map<String, Value>>,
    /// With `deny`: the denial code.
    pub code: Option<String>,
    /// With `invalid-config`: a substring of the validation message.
    pub message: Option<String>,
}

/// The exchange around a case's token.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSpec {
    pub tenant: Option<String>,
    pub identity: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub client_address: Option<String>,
    /// Defaults to the token's `iat`, else 2023-11-14T22:13:20Z.
    pub now: Option<i64>,
}

/// What a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Allow,
    Deny,
    /// `validate-config` must reject the case's config.
    InvalidConfig,
}

/// Why a cases file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error("cannot read `{path}`: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("`{path}` is not a valid cases file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no module: pass MODULE.wasm or set `module:` in `{0}`")]
    NoModule(PathBuf),
}

impl CaseFile {
    /// Reads and parses a cases file; errors name the line.
    pub fn load(path: &Path) -> Result<Self, CasesError> {
        let text = std::fs::read_to_string(path).map_err(|cause| CasesError::Read {
            path: path.to_owned(),
            cause,
        })?;
        serde_yaml_ng::from_str(&text).map_err(|e| CasesError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The module to test: `override_path`, else `module:` resolved against the file's folder
    /// (a built-in's address, `builtin:cel`, as it is).
    pub fn module_path(
        &self,
        cases_path: &Path,
        override_path: Option<&Path>,
    ) -> Result<PathBuf, CasesError> {
        if let Some(path) = override_path {
            return Ok(path.to_owned());
        }
        let module = self
            .module
            .as_ref()
            .ok_or_else(|| CasesError::NoModule(cases_path.to_owned()))?;
        if module
            .to_str()
            .is_some_and(|m| super::BUILTINS.contains(&m))
        {
            return Ok(module.clone());
        }
        let base = cases_path.parent().unwrap_or(Path::new("."));
        Ok(base.join(module))
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    pub expected: Expect,
    /// `allow`, `deny`, `valid-config`, `invalid-config` or `error`.
    pub got: String,
    pub code: Option<String>,
    pub scopes: Vec<String>,
    pub fuel_used: u64,
    /// Wall-clock time of the decision, microseconds.
    pub elapsed_us: u64,
    /// Why the case failed.
    pub failure: Option<String>,
    /// What the policy logged, for `--verbose` and JSON.
    pub logs: Vec<String>,
}

/// Runs every case of `file` against `module`.
pub fn run(engine: &PolicyEngine, module: &PolicyModule, file: &CaseFile) -> Vec<CaseResult> {
    file.cases
        .iter()
        .map(|case| run_case(engine, module, file, case))
        .collect()
}

fn run_case(
    engine: &PolicyEngine,
    module: &PolicyModule,
    file: &CaseFile,
    case: &Case,
) -> CaseResult {
    let mut result = CaseResult {
        name: case.name.clone(),
        passed: false,
        expected: case.expect,
        got: "error".into(),
        code: None,
        scopes: Vec::new(),
        fuel_used: 0,
        elapsed_us: 0,
        failure: None,
        logs: Vec::new(),
    };
    let config = config_json(case.config.as_ref().unwrap_or(&file.config));
    let validation = engine.validate_config(module, &config);
    if case.expect == Expect::InvalidConfig {
        result.got = if validation.is_ok() {
            "valid-config"
        } else {
            "invalid-config"
        }
        .into();
        result.failure = match (&validation, &case.message) {
            (Ok(()), _) => {
                Some("expected validate-config to reject the config, it accepted it".into())
            }
            (Err(message), Some(want)) if !message.contains(want.as_str()) => Some(format!(
                "config rejected with `{message}`, expected it to mention `{want}`"
            )),
            _ => None,
        };
        result.passed = result.failure.is_none();
        return result;
    }
    if let Err(message) = validation {
        result.failure = Some(format!("validate-config rejected the config: {message}"));
        return result;
    }
    let request = match case_request(case, module.config(&config)) {
        Ok(request) => request,
        Err(message) => {
            result.failure = Some(message);
            return result;
        }
    };
    let fuel = file.fuel.unwrap_or(engine.limits().fuel);
    let evaluation = engine.evaluate_with_fuel(module, &request, fuel);
    record(&mut result, &evaluation);
    result.failure = compare(case, &evaluation.decision);
    result.passed = result.failure.is_none();
    result
}

fn config_json(config: &Value) -> String {
    if config.is_null() {
        "{}".to_owned()
    } else {
        config.to_string()
    }
}

fn case_request(
    case: &Case,
    config: impl Into<String>,
) -> Result<super::bindings::Request, String> {
    let mut token = case.token.clone();
    let iat = token.get("iat").and_then(Value::as_i64);
    let now = case.exchange.now.or(iat).unwrap_or(DEFAULT_NOW);
    token
        .entry("exp")
        .or_insert_with(|| Value::from(now + 3600));
    let exchange = ExchangeContext {
        tenant: case
            .exchange
            .tenant
            .clone()
            .unwrap_or_else(|| "test".into()),
        identity: case
            .exchange
            .identity
            .clone()
            .unwrap_or_else(|| "test".into()),
        requested_audiences: case.exchange.audiences.clone(),
        requested_scopes: case.exchange.scopes.clone(),
        client_address: case.exchange.client_address.clone(),
        now,
    };
    build_request(&Value::Object(token), exchange, config)
        .map_err(|e| format!("invalid token: {e}"))
}

fn record(result: &mut CaseResult, evaluation: &Evaluation) {
    result.fuel_used = evaluation.fuel_used;
    result.elapsed_us = evaluation.elapsed.as_micros() as u64;
    result.logs = evaluation
        .logs
        .iter()
        .map(|line| format!("[{}] {}", line.stream, line.message))
        .collect();
    match &evaluation.decision {
        Decision::Allow(grant) => {
            result.got = "allow".into();
            result.scopes = grant.scopes.clone();
        }
        Decision::Deny(denial) => {
            result.got = "deny".into();
            result.code = Some(denial.code.clone());
        }
    }
}

fn compare(case: &Case, decision: &Decision) -> Option<String> {
    match (case.expect, decision) {
        (Expect::Allow, Decision::Deny(d)) => Some(format!(
            "expected allow, got deny ({}: {})",
            d.code, d.message
        )),
        (Expect::Deny, Decision::Allow(g)) => Some(format!(
            "expected deny, got allow with scopes {:?}",
            g.scopes
        )),
        (Expect::Deny, Decision::Deny(d)) => match &case.code {
            Some(code) if *code != d.code => Some(format!(
                "expected deny code `{code}`, got `{}` ({})",
                d.code, d.message
            )),
            _ => None,
        },
        (Expect::Allow, Decision::Allow(grant)) => {
            if let Some(want) = &case.scopes {
                let (mut want, mut got) = (want.clone(), grant.scopes.clone());
                want.sort();
                got.sort();
                if want != got {
                    return Some(format!("expected scopes {want:?}, got {got:?}"));
                }
            }
            if case.ttl_seconds.is_some() && case.ttl_seconds != grant.ttl_seconds {
                return Some(format!(
                    "expected ttl_seconds {:?}, got {:?}",
                    case.ttl_seconds, grant.ttl_seconds
                ));
            }
            for (name, want) in case.claims.iter().flatten() {
                let got = grant.claims.iter().find(|(n, _)| n == name).map(|(_, v)| v);
                if got != Some(want) {
                    return Some(format!("expected claim `{name}` = {want}, got {got:?}"));
                }
            }
            None
        }
        (Expect::InvalidConfig, _) => unreachable!("handled before evaluation"),
    }
}
