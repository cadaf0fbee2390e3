//! Tollgate: workload-identity token exchange with sandboxed WebAssembly trust policies.

pub mod cli;
pub mod policy;
pub mod verify;
