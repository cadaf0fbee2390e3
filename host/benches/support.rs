//! What the exchange and scale benches share: the processes they start (a dev issuer and
//! `tollgate serve`, both on loopback), admin calls that set tenants up, the load generator
//! (re-run as a separate process), and the statistics they print.

#![allow(
    dead_code,
    unused_imports,
    reason = "each bench uses part of the shared support"
)]

pub mod admin;
pub mod loadgen;
pub mod processes;
pub mod stats;

/// An unsigned number from the environment variable `name`, or `default`.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
