//! The resource limits every policy runs under.

use std::time::Duration;

/// The most fuel an identity may give its policy.
pub const MAX_FUEL: u64 = 10_000_000;

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
    /// Largest module accepted. Default 16 MiB.
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
            memory_bytes: 32 << 20,
            table_elements: 20_000,
            stack_bytes: 512 << 10,
            output_bytes: 64 << 10,
            log_bytes: 16 << 10,
            module_bytes: 16 << 20,
            compile_deadline: Duration::from_secs(20),
            concurrent_instances: 128,
        }
    }
}
