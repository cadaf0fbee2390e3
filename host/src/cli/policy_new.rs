//! `tollgate policy new --lang rust|python|js NAME`: a policy project that builds and passes
//! its own cases out of the box.
//!
//! The project uses the SDKs of the Tollgate source tree (`--sdk`, by default the tree this
//! binary was built from): the Rust SDK crate by path, `sdk/python/build.sh` and
//! `sdk/js/build.sh` with their pinned toolchains. Its `build.sh` builds the component and runs
//! the unit tests and `tollgate policy test` over its `cases.yaml`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The language of the new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy's language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// The Tollgate source tree whose SDKs the project uses.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    sdk: PathBuf,
    /// The project's name (lowercase letters, digits and `-`); also its directory.
    name: String,
}

/// The cases every template passes: the same policy in every language.
const CASES: &str = r#"# Cases for `__NAME__`, run by `./build.sh` (tollgate policy test MODULE cases.yaml).
config: { namespaces: ["team-a-*"], scopes: ["read"] }
# An interpreter (Python, JavaScript) burns millions of fuel units per decision; an identity on
# this policy sets `fuel` to the same.
fuel: 10000000
cases:
  - name: a team-a namespace is allowed
    token: { sub: "system:serviceaccount:team-a-prod:app",
             "kubernetes.io": { namespace: team-a-prod, serviceaccount: { name: app, uid: "u1" } } }
    expect: allow
    scopes: ["read"]
  - name: globs do not cross separators
    token: { sub: "system:serviceaccount:team-attacker:app",
             "kubernetes.io": { namespace: "team-b", serviceaccount: { name: app, uid: "u2" } } }
    expect: deny
    code: namespace
  - name: a token without kubernetes claims is denied
    expect: deny
    code: namespace
  - name: unknown keys are rejected
    config: { namespaces: ["x"], scopes: ["read"], scope: "typo" }
    expect: invalid-config
    message: unknown field
  - name: a config without namespaces is rejected
    config: { namespaces: [], scopes: ["read"] }
    expect: invalid-config
    message: empty
"#;

const RUST_CARGO: &str = r#"[package]
name = "__NAME__"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
tollgate-policy = { path = "__SDK__/policy-guest" }
serde = { version = "1", features = ["derive"] }

# A project of its own, outside any workspace around it.
[workspace]
"#;

const RUST_LIB: &str = r##"//! `__NAME__`: lets the namespaces matching a glob in, with fixed scopes.

use serde::Deserialize;
use tollgate_policy::{Decision, Grant, Policy, Request, export_policy, glob, glob_match};

/// The policy.
pub struct Namespaces;

/// The identity's config: unknown keys are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Globs on the namespace, such as `team-a-*`.
    namespaces: Vec<String>,
    /// The scopes granted.
    scopes: Vec<String>,
}

impl Policy for Namespaces {
    type Config = Config;

    fn validate_config(config: &Config) -> Result<(), String> {
        if config.namespaces.is_empty() {
            return Err("`namespaces` is empty: it would match nothing".into());
        }
        for pattern in &config.namespaces {
            glob::validate(pattern).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn evaluate(config: &Config, request: &Request) -> Decision {
        match request.token.namespace() {
            Some(ns) if config.namespaces.iter().any(|p| glob_match(p, ns)) => {
                Decision::allow(Grant::new().scopes(config.scopes.iter().cloned()))
            }
            _ => Decision::deny("namespace", "namespace is not allowed"),
        }
    }
}

export_policy!(Namespaces);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_namespace_is_allowed() {
        let mut request = Request::default();
        request.token.kubernetes = Some(tollgate_policy::KubernetesClaims {
            namespace: "team-a-prod".into(),
            ..Default::default()
        });
        let config = r#"{"namespaces": ["team-a-*"], "scopes": ["read"]}"#;
        let decision = tollgate_policy::evaluate_json::<Namespaces>(config, &request);
        assert_eq!(decision.grant().unwrap().scopes, ["read"]);
    }
}
"##;

const RUST_BUILD: &str = r#"#!/usr/bin/env bash
# Builds the component and runs the unit tests and the cases.
set -euo pipefail
cd "$(dirname "$0")"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo test --quiet --target-dir target
cargo build --release --target wasm32-wasip2 --target-dir target
"${TOLLGATE:-tollgate}" policy test target/wasm32-wasip2/release/__CRATE__.wasm cases.yaml
"#;

const PY_POLICY: &str = r#""""`__NAME__`: lets the namespaces matching a glob in, with fixed scopes."""

from dataclasses import dataclass
from typing import List

from tollgate_policy import ConfigError, Decision, Grant, Policy, glob, glob_match


@dataclass
class Config:
    """The identity's config: unknown keys are errors."""

    #: Globs on the namespace, such as ``team-a-*``.
    namespaces: List[str]
    #: The scopes granted.
    scopes: List[str]


class Namespaces(Policy[Config]):
    """The policy."""

    Config = Config

    def validate_config(self, config):
        """Refuses an empty list and invalid globs."""
        if not config.namespaces:
            raise ConfigError("`namespaces` is empty: it would match nothing")
        for pattern in config.namespaces:
            try:
                glob.validate(pattern)
            except glob.GlobError as error:
                raise ConfigError(str(error)) from None

    def evaluate(self, config, request):
        """Allows a namespace matching one of the globs."""
        ns = request.token.namespace()
        if ns is not None and any(glob_match(p, ns) for p in config.namespaces):
            return Decision.allow(Grant().with_scopes(config.scopes))
        return Decision.deny("namespace", "namespace is not allowed")
"#;

const PY_APP: &str = r#""""The component's app module (what componentize-py builds)."""

from policy import Namespaces
from tollgate_policy import export

#: The exports of the ``trust-policy`` world.
WitWorld = export(Namespaces)
"#;

const PY_TEST: &str = r#""""Unit tests on the host's Python (no WebAssembly)."""

import pathlib
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1] / "src"), "__SDK__/sdk/python"]

from policy import Namespaces  # noqa: E402
from tollgate_policy import KubernetesClaims, Request, Token, evaluate_json  # noqa: E402


def test_a_matching_namespace_is_allowed():
    request = Request(token=Token(kubernetes=KubernetesClaims("team-a-prod")))
    decision = evaluate_json(Namespaces, '{"namespaces": ["team-a-*"], "scopes": ["read"]}', request)
    assert decision.grant.scopes == ["read"]
"#;

const PY_BUILD: &str = r#"#!/usr/bin/env bash
# Builds the component (componentize-py, pinned by the SDK) and runs the unit tests and cases.
set -euo pipefail
cd "$(dirname "$0")"
sdk="__SDK__"
TOLLGATE_PY_VENV="${TOLLGATE_PY_VENV:-$PWD/target/venv}" "$sdk/sdk/python/build.sh" src target/__CRATE__.wasm
PYTHONDONTWRITEBYTECODE=1 "${TOLLGATE_PY_VENV:-$PWD/target/venv}/bin/python" -m pytest -q -p no:cacheprovider tests
"${TOLLGATE:-tollgate}" policy test target/__CRATE__.wasm cases.yaml
"#;

const JS_POLICY: &str = r#"/**
 * `__NAME__`: lets the namespaces matching a glob in, with fixed scopes.
 * @module
 */
import { ConfigError, Decision, Grant, globMatch, t, validateGlob } from '../vendor/tollgate-policy/index.js';

/** The policy. */
export const namespaces = {
  config: t.object({ namespaces: t.list(t.string()), scopes: t.list(t.string()) }),

  /** Refuses an empty list and invalid globs. */
  validateConfig(config) {
    if (config.namespaces.length === 0) throw new ConfigError('`namespaces` is empty: it would match nothing');
    for (const pattern of config.namespaces) {
      try {
        validateGlob(pattern);
      } catch (error) {
        throw new ConfigError(error.message);
      }
    }
  },

  /** Allows a namespace matching one of the globs. */
  evaluate(config, request) {
    const ns = request.token.namespace();
    return ns !== undefined && config.namespaces.some((p) => globMatch(p, ns))
      ? Decision.allow(new Grant().withScopes(config.scopes))
      : Decision.deny('namespace', 'namespace is not allowed');
  },
};
"#;

const JS_COMPONENT: &str = r#"/**
 * The component's entry module (what componentize-js builds).
 * @module
 */
import { globMatch, log } from 'tollgate:policy/host@0.1.0';
import { exportPolicy, useHost } from '../vendor/tollgate-policy/index.js';
import { namespaces } from './policy.js';

useHost({ log, globMatch });
const policy = exportPolicy(namespaces);

/** `evaluate` of the world. @param {any} request */
export function evaluate(request) {
  return policy.evaluate(request);
}

/** `validate-config` of the world. @param {string} config */
export function validateConfig(config) {
  return policy.validateConfig(config);
}
"#;

const JS_TEST: &str = r#"// Unit tests with node's test runner (no WebAssembly).
import assert from 'node:assert/strict';
import test from 'node:test';

import { Request, evaluateJson } from '../vendor/tollgate-policy/index.js';
import { namespaces } from '../src/policy.js';

test('a matching namespace is allowed', () => {
  const request = new Request({ token: { kubernetes: { namespace: 'team-a-prod' } } });
  const decision = evaluateJson(namespaces, '{"namespaces": ["team-a-*"], "scopes": ["read"]}', request);
  assert.deepEqual(decision.grant.scopes, ['read']);
});
"#;

const JS_BUILD: &str = r#"#!/usr/bin/env bash
# Builds the component (componentize-js, pinned by the SDK) and runs the unit tests and cases.
# The SDK's sources are copied into vendor/, inside the directory componentize-js may read.
set -euo pipefail
cd "$(dirname "$0")"
sdk="__SDK__"
mkdir -p vendor/tollgate-policy
cp "$sdk"/sdk/js/src/*.js "$sdk"/sdk/js/src/*.d.ts vendor/tollgate-policy/
node --test test/
"$sdk/sdk/js/build.sh" src/component.js target/__CRATE__.wasm "$PWD"
"${TOLLGATE:-tollgate}" policy test target/__CRATE__.wasm cases.yaml
"#;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The project's files for `lang`, relative to its directory.
fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![("cases.yaml", CASES)];
    files.extend(match lang {
        Lang::Rust => vec![
            ("Cargo.toml", RUST_CARGO),
            ("src/lib.rs", RUST_LIB),
            ("build.sh", RUST_BUILD),
        ],
        Lang::Python => vec![
            ("src/policy.py", PY_POLICY),
            ("src/app.py", PY_APP),
            ("tests/test_policy.py", PY_TEST),
            ("build.sh", PY_BUILD),
        ],
        Lang::Js => vec![
            ("src/policy.js", JS_POLICY),
            ("src/component.js", JS_COMPONENT),
            ("test/policy.test.js", JS_TEST),
            ("build.sh", JS_BUILD),
        ],
    });
    files.push((".gitignore", "/target\n/vendor\n"));
    files
}

fn write(dir: &Path, lang: Lang, name: &str, sdk: &Path) -> std::io::Result<()> {
    let sdk = sdk.display().to_string();
    let krate = name.replace('-', "_");
    for (path, template) in files(lang) {
        let text = template
            .replace("__NAME__", name)
            .replace("__CRATE__", &krate)
            .replace("__SDK__", &sdk);
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        if path.extension().is_some_and(|e| e == "sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    if lang == Lang::Rust {
        // The source tree's toolchain and dependency versions: the SDK is built as it is
        // tested (cargo drops the lock's entries the project does not use).
        for file in ["rust-toolchain.toml", "Cargo.lock"] {
            let from = Path::new(&sdk).join(file);
            if from.is_file() {
                std::fs::copy(from, dir.join(file))?;
            }
        }
    }
    Ok(())
}

pub fn run(args: Args) -> ExitCode {
    if !valid_name(&args.name) {
        eprintln!(
            "error: `{}` is not a project name: lowercase letters, digits and `-`, starting with a letter",
            args.name
        );
        return ExitCode::from(2);
    }
    let sdk = match args.sdk.canonicalize() {
        Ok(sdk) if sdk.join("wit/policy.wit").is_file() => sdk,
        _ => {
            eprintln!(
                "error: `{}` is not a Tollgate source tree (no wit/policy.wit): pass --sdk",
                args.sdk.display()
            );
            return ExitCode::from(2);
        }
    };
    let dir = PathBuf::from(&args.name);
    if dir.exists() {
        eprintln!("error: `{}` already exists", dir.display());
        return ExitCode::from(2);
    }
    if let Err(e) = write(&dir, args.lang, &args.name, &sdk) {
        eprintln!("error: cannot write `{}`: {e}", dir.display());
        return ExitCode::from(1);
    }
    println!(
        "created `{}` ({:?}); build and test it with ./{}/build.sh",
        dir.display(),
        args.lang,
        args.name
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("team-scopes2"));
        for bad in ["", "Team", "-x", "a/b", "a b", "1x"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
