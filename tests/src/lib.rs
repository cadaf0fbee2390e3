//! The one test kit of Tollgate's tests and benches. Which tier a test belongs to is in
//! `tests/README.md`.
//!
//! - [`server`]: the exchange server on loopback, built in this process by the composition root
//!   (`tollgate::app::App`) or run as a `tollgate serve` process, and the HTTP calls a tenant
//!   and a workload make;
//! - [`cluster`]: a cluster's OIDC issuer (the dev issuer's router) and its ServiceAccount
//!   tokens, in process;
//! - [`issuer_double`]: an issuer and TokenReview API server that misbehave on command and
//!   count requests; [`attack`]: keys of the test's own, tokens forged byte by byte, a
//!   multi-issuer key server, and a tenant wired to it;
//! - [`life`]: introspection, revocation and renewal of issued tokens;
//! - [`postgres`]: a database of a test's own on the run's PostgreSQL, and a forwarder to cut it;
//! - [`jwt`], [`temp`], [`process`], [`fixtures`] (the wasm modules, built once).

pub mod attack;
pub mod cluster;
pub mod fixtures;
pub mod issuer_double;
pub mod jwt;
pub mod life;
mod logs;
pub mod postgres;
pub mod process;
pub mod raw;
pub mod server;
pub mod temp;
