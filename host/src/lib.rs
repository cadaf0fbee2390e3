//! Tollgate: workload-identity token exchange with sandboxed WebAssembly trust policies.

pub mod cli;
pub mod dev;
pub mod issue;
pub mod policy;
pub mod store;
