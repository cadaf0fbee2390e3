//! The resource limits every policy runs under.

use std::time::Duration;

/// The most fuel an identity may give its policy.
pub const MAX_FUEL: u64 = 10_000_000;

/// Largest module accepted by default: 32 MiB. An interpreter guest carries its runtime: a
/// componentize-py component (CPython with its standard library) is about 18 MiB and a
/// componentize-js one (SpiderMonkey) about 12 MiB, so the 16 MiB a Rust policy never came near
/// refused every Python policy. `tollgate serve --policy-max-module-bytes` changes it.
pub const DEFAULT_MODULE_BYTES: usize = 32 << 20;
/// Linear memory cap per instance by default: 32 MiB (`--policy-memory-bytes`). The Python and
/// JavaScript examples decide within it; a policy that needs more gets `memory-limit`.
pub const DEFAULT_MEMORY_BYTES: usize = 32 << 20;
/// Compile deadline by default, in seconds (`--policy-compile-seconds`). An 18 MiB Python
/// component compiles in about 27 s on one thread in a debug build of the server on two busy
/// cores (a few seconds in a release build); the old 20 s refused it. The deadline only bounds
/// how long an upload waits: a compilation past it keeps one of the two compilation slots
/// until it ends, so a longer deadline costs nothing more.
pub const DEFAULT_COMPILE_SECONDS: u64 = 120;

/// Limits for loading and running policies. `Default` holds the documented defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Fuel per decision (roughly one unit per WebAssembly instruction). Default 1,000,000.
    pub fuel: u64,
    /// Wall-clock backstop per decision, enforced by epoch interruption. Default 100 ms.
    pub wall_clock: Duration,
    /// Linear memory cap per instance. Default 32 MiB.
    pub memory_bytes: usize,
    /// Table elements cap per instance. Default 20,000.
    pub table_elements: usize,
    /// WebAssembly stack cap. Default 512 KiB.
    pub stack_bytes: usize,
    /// Cap on a decision's output (grant, denial, claims). Default 64 KiB.
    pub output_bytes: usize,
    /// Cap on what a decision may log, stdout and stderr included. Default 16 KiB.
    pub log_bytes: usize,
    /// Largest module accepted. Default [`DEFAULT_MODULE_BYTES`].
    pub module_bytes: usize,
    /// Deadline for compiling a module at load time. Default 20 s.
    pub compile_deadline: Duration,
    /// Instances that may run at once (the pooling allocator's size). Default 128.
    pub concurrent_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 1_000_000,
            wall_clock: Duration::from_millis(100),
            memory_bytes: DEFAULT_MEMORY_BYTES,
            table_elements: 20_000,
            stack_bytes: 512 << 10,
            output_bytes: 64 << 10,
            log_bytes: 16 << 10,
            module_bytes: DEFAULT_MODULE_BYTES,
            compile_deadline: Duration::from_secs(DEFAULT_COMPILE_SECONDS),
            concurrent_instances: 128,
        }
    }
}
