//! Trust policies: sandboxed WebAssembly components, loaded at upload and run per decision.
//!
//! - [`engine`] owns the wasmtime engine, the linker and the pooling allocator, and runs
//!   decisions under [`limits`];
//! - [`module`] validates, compiles and caches uploaded components;
//! - [`request`] builds the typed request a policy sees from raw token claims;
//! - [`cases`] is the `tollgate policy test` harness, on the same code path as the server.

pub mod bindings;
pub mod bundle;
pub mod cases;
pub mod engine;
mod globs;
mod host_api;
pub mod limits;
pub mod module;
pub mod outcome;
pub mod prepare;
pub mod producers;
pub mod registry;
pub mod request;
mod sandbox;
mod wasi;

pub use engine::{Phases, PolicyEngine};
pub use limits::Limits;
pub use module::{LoadError, ModuleInfo, PolicyModule};
pub use outcome::{Answer, Decision, Denial, Evaluation, Grant};
pub use registry::{BUILTIN_CEL, BUILTIN_RULES, BUILTINS, PolicyRegistry};
pub use request::{ExchangeContext, RequestError, build_request};
