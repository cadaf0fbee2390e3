//! Host-side bindings for the `tollgate:policy/trust-policy` world (`wit/policy.wit`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "trust-policy",
});

pub use self::Decision as WitDecision;
pub use self::tollgate::policy::types::{Exchange, KubernetesClaims, ObjectRef, Token};
