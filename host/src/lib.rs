//! Tollgate: workload-identity token exchange with sandboxed WebAssembly trust policies.

pub mod admin;
pub mod api;
pub mod app;
pub mod cli;
pub mod common;
pub mod config;
pub mod dev;
pub mod exchange;
pub mod issue;
pub mod metrics;
pub mod policy;
pub mod store;
pub mod transport;
pub mod verify;
