//! Routes and flows against the composition root (`tollgate::app::App`) in this process, on a
//! loopback port: the admin API, the four exchange shapes, denials, tenant isolation,
//! verification modes, and the attack suite. One test binary, so that the suite links
//! wasmtime once. What needs a real process is in `process.rs`; the CLI in `cli/`.

mod admin;
mod attack_claims;
mod attack_federation;
mod attack_fetch;
mod attack_http;
mod attack_jwks;
mod attack_sandbox;
mod attack_tokens;
mod cel;
mod change;
mod deny;
mod exchange;
mod isolation;
mod languages;
mod life;
mod reload;
mod seeds;
mod simulate;
mod verify;
