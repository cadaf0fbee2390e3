//! # Writing Tollgate trust policies
//!
//! A trust policy decides which verified workloads may assume an identity, and with what grant.
//! Tollgate runs it as a sandboxed WebAssembly component: a fresh instance per decision, under a
//! fuel budget, a memory cap and a wall-clock backstop. The host has already authenticated the
//! subject token (signature, issuer, lifetime, audience) — a policy only *authorizes*.
//!
//! Implement [`Policy`] for a type, call [`export_policy!`] once, and build the crate for
//! `wasm32-wasip2`:
//!
//! ```
//! use serde::Deserialize;
//! use tollgate_policy::{Decision, Grant, Policy, Request, export_policy, glob_match};
//!
//! /// Lets one namespace in, with fixed scopes.
//! pub struct OneNamespace;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Config {
//!     /// A glob on the namespace, such as `team-a-*`.
//!     namespace: String,
//!     scopes: Vec<String>,
//! }
//!
//! impl Policy for OneNamespace {
//!     type Config = Config;
//!
//!     fn validate_config(config: &Config) -> Result<(), String> {
//!         tollgate_policy::glob::validate(&config.namespace).map_err(|e| e.to_string())
//!     }
//!
//!     fn evaluate(config: &Config, request: &Request) -> Decision {
//!         match request.token.namespace() {
//!             Some(ns) if glob_match(&config.namespace, ns) => {
//!                 Decision::allow(Grant::new().scopes(config.scopes.iter().cloned()))
//!             }
//!             _ => Decision::deny("namespace", "namespace is not allowed"),
//!         }
//!     }
//! }
//!
//! export_policy!(OneNamespace);
//!
//! // The same logic runs natively, so `cargo test` needs no WebAssembly:
//! let mut request = Request::default();
//! request.token.kubernetes = Some(tollgate_policy::KubernetesClaims {
//!     namespace: "team-a-prod".into(),
//!     ..Default::default()
//! });
//! let config = r#"{"namespace": "team-a-*", "scopes": ["read"]}"#;
//! let decision = tollgate_policy::evaluate_json::<OneNamespace>(config, &request);
//! assert_eq!(decision.grant().unwrap().scopes, ["read"]);
//! ```
//!
//! Inside the sandbox the SDK installs a bump allocator (feature `bump-alloc`, on by default):
//! an instance lives for one decision, so nothing is ever freed for real.
//!
//! The crate needs `crate-type = ["cdylib", "rlib"]`: `cdylib` for the component, `rlib` for
//! native tests. Check and unit-test the built module with `tollgate policy check` and
//! `tollgate policy test`.

#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(test, not(target_arch = "wasm32")))]
extern crate std;

pub mod config;
pub mod decision;
pub mod glob;
pub mod host;
pub mod json;
pub mod prepared;
pub mod types;

pub use config::{ConfigError, parse as parse_config};
pub use decision::{Decision, Denial, Grant};
pub use host::{Level, glob_match, log};
pub use types::{Exchange, KubernetesClaims, ObjectRef, Request, Token};

use alloc::string::{String, ToString};
use serde::de::DeserializeOwned;

/// A trust policy. Implement it and register the type with [`export_policy!`].
pub trait Policy {
    /// The identity's policy config, parsed from JSON with `serde`.
    type Config: DeserializeOwned;

    /// Checks a parsed config when an identity is created or changed. Return a message that
    /// tells the tenant what to fix. The default accepts every config that parses.
    fn validate_config(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Decides one exchange. Deterministic code is easiest to test: read the time from
    /// [`Exchange::now`] rather than a clock.
    fn evaluate(config: &Self::Config, request: &Request) -> Decision;
}

/// Parses `config` and runs [`Policy::validate_config`], as the host's `validate-config` does.
pub fn validate_json<P: Policy>(config: &str) -> Result<(), String> {
    let parsed: P::Config = config::parse(config)?;
    P::validate_config(&parsed)
}

/// Parses `config` and runs [`Policy::evaluate`], as the host's `evaluate` does. A config that
/// does not parse is a denial with code `config`.
pub fn evaluate_json<P: Policy>(config: &str, request: &Request) -> Decision {
    match config::parse::<P::Config>(config) {
        Ok(parsed) => P::evaluate(&parsed, request),
        Err(error) => Decision::deny("config", error.to_string()),
    }
}

/// Exports a [`Policy`] implementation as the component's `trust-policy` world.
///
/// Use it once per crate. Compiled natively it expands to nothing, so the crate's unit tests
/// can call [`evaluate_json`] directly.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code, reason = "wit-bindgen's generated canonical ABI exports")]
        const _: () = {
            struct TollgateExports;

            impl $crate::__private::Guest for TollgateExports {
                fn evaluate(
                    request: $crate::__private::WitRequest,
                ) -> $crate::__private::WitDecision {
                    $crate::__private::evaluate::<$policy>(request)
                }

                fn validate_config(config: $crate::__private::String) -> Result<(), $crate::__private::String> {
                    $crate::validate_json::<$policy>(&config)
                }
            }

            $crate::bindings::__tollgate_export_world!(TollgateExports with_types_in $crate::__private::bindings);
        };
    };
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::bindings::Guest;
    pub use crate::bindings::tollgate::policy::types::{
        Decision as WitDecision, Request as WitRequest,
    };
    pub use alloc::string::String;

    /// Logs the panic through the host, then traps: the decision fails closed.
    pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        crate::log(
            crate::Level::Warn,
            &alloc::format!("policy panicked: {info}"),
        );
        core::arch::wasm32::unreachable()
    }

    /// The canonical ABI allocator for `no_std` policies, on the exclusive bump heap.
    ///
    /// # Safety
    ///
    /// `old` must be null with `old_len == 0`, or a block of `old_len` bytes with alignment
    /// `align` returned by this function.
    #[cfg(feature = "bump-alloc")]
    #[allow(unsafe_code, reason = "raw allocation for the canonical ABI")]
    pub unsafe fn cabi_realloc(
        old: *mut u8,
        old_len: usize,
        align: usize,
        new_len: usize,
    ) -> *mut u8 {
        use alloc::alloc::{Layout, alloc, realloc};
        crate::ALLOCATOR.use_exclusive_heap();
        let ptr = if old_len == 0 {
            if new_len == 0 {
                return align as *mut u8;
            }
            let Ok(layout) = Layout::from_size_align(new_len, align) else {
                core::arch::wasm32::unreachable()
            };
            // SAFETY: `layout` has a non-zero size.
            unsafe { alloc(layout) }
        } else {
            let Ok(layout) = Layout::from_size_align(old_len, align) else {
                core::arch::wasm32::unreachable()
            };
            // SAFETY: the caller guarantees `old` was allocated with `layout`.
            unsafe { realloc(old, layout, new_len) }
        };
        if ptr.is_null() {
            core::arch::wasm32::unreachable()
        }
        ptr
    }

    /// `memcmp` for `no_std` policies: a plain loop (never a call to `memcmp` itself).
    ///
    /// # Safety
    ///
    /// `a` and `b` must be readable for `n` bytes.
    #[allow(
        unsafe_code,
        reason = "raw memory comparison for the compiler's memcmp calls"
    )]
    pub unsafe fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        let mut i = 0;
        while i < n {
            // SAFETY: `i < n` and both ranges are readable for `n` bytes.
            let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
            if x != y {
                return i32::from(x) - i32::from(y);
            }
            i += 1;
        }
        0
    }

    pub fn evaluate<P: crate::Policy>(request: WitRequest) -> WitDecision {
        let request = crate::convert::request(request);
        crate::convert::decision(crate::evaluate_json::<P>(&request.config, &request))
    }
}

#[cfg(target_arch = "wasm32")]
mod convert;

/// Makes a `#![no_std]` policy a complete component: a panic handler that logs the panic
/// through the host and traps, and the `cabi_realloc` export wasi-libc would otherwise provide.
///
/// A `no_std` policy imports at most `tollgate:policy/host` — no WASI at all — so the host
/// instantiates it several times faster, and the SDK's bump allocator may use the free part of
/// the initial memory. Call it once at the crate root, next to [`export_policy!`]; the
/// `bump-alloc` feature must stay on. Build such a crate on its own (`cargo build -p NAME`):
/// built together with crates that enable `std` features of `serde`, feature unification would
/// link `std` into it as well.
///
/// `no_std_runtime!(no_imports)` is the same runtime with a panic handler that only traps (the
/// decision is still denied, as `policy-trap`, but without the panic message). Use it in a
/// policy that neither logs nor calls [`glob_match`] (match with [`glob::matches`] instead): its
/// component then imports no functions, so it is a single core instance with no adapter modules
/// and costs about 2 µs less per decision. The stock `rules` policy is built this way.
#[macro_export]
macro_rules! no_std_runtime {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[panic_handler]
        fn tollgate_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::__private::panic(info)
        }

        $crate::no_std_runtime!(@common);
    };
    (no_imports) => {
        #[cfg(target_arch = "wasm32")]
        #[panic_handler]
        fn tollgate_panic(_: &::core::panic::PanicInfo<'_>) -> ! {
            ::core::arch::wasm32::unreachable()
        }

        $crate::no_std_runtime!(@common);
    };
    (@common) => {

        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code, reason = "the canonical ABI's allocation export")]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn cabi_realloc(
            old: *mut u8,
            old_len: usize,
            align: usize,
            new_len: usize,
        ) -> *mut u8 {
            // SAFETY: called by the canonical ABI with a block it got from this function.
            unsafe { $crate::__private::cabi_realloc(old, old_len, align, new_len) }
        }

        // wasi-libc would provide these; the compiler emits calls to them for slice equality.
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code, reason = "libc symbol the compiler calls")]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: the compiler passes two readable ranges of `n` bytes.
            unsafe { $crate::__private::memcmp(a, b, n) }
        }

        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code, reason = "libc symbol the compiler calls")]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: as for `memcmp`.
            unsafe { $crate::__private::memcmp(a, b, n) }
        }
    };
}

#[cfg(any(test, all(target_arch = "wasm32", feature = "bump-alloc")))]
mod bump;

/// Inside the sandbox every instance serves one decision and is thrown away: a bump allocator
/// is all it needs, and it is several times cheaper in fuel than a general-purpose one.
#[cfg(all(target_arch = "wasm32", feature = "bump-alloc"))]
#[global_allocator]
static ALLOCATOR: bump::BumpAllocator = bump::BumpAllocator::new();

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(unsafe_code, reason = "wit-bindgen's generated canonical ABI glue")]
#[allow(missing_docs, clippy::all, reason = "generated code")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "trust-policy",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__tollgate_export_world",
        default_bindings_module: "tollgate_policy::bindings",
    });
}
