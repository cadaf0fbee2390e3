//! Per-decision state of one sandboxed instance: limits, captured output, deterministic inputs.

use super::globs::GlobCache;
use serde::Serialize;
use std::sync::Arc;
use wasmtime::ResourceLimiter;

/// A line a policy logged, or wrote to stdout/stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// `debug`, `info`, `warn`, `stdout` or `stderr`.
    pub stream: &'static str,
    /// The text, cut to the decision's log budget.
    pub message: String,
}

/// Which limit stopped an instance, when one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    Memory,
    Table,
    Exit,
}

/// The store data of one decision.
pub struct SandboxState {
    memory_bytes: usize,
    table_elements: usize,
    log_budget: usize,
    pub(super) limit_hit: Option<LimitHit>,
    pub(super) logs: Vec<LogLine>,
    pub(super) log_truncated: bool,
    /// Request time in seconds: what the guest's clocks read.
    pub(super) now: i64,
    rng: u64,
    pub(super) globs: Arc<GlobCache>,
}

impl SandboxState {
    pub fn new(limits: &super::Limits, now: i64, globs: Arc<GlobCache>) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            log_budget: limits.log_bytes,
            limit_hit: None,
            logs: Vec::new(),
            log_truncated: false,
            now,
            // Seeded from the request: the same request gives the same decision.
            rng: (now as u64) ^ 0x9E37_79B9_7F4A_7C15,
            globs,
        }
    }

    /// Appends to the decision log within its byte budget.
    pub fn log(&mut self, stream: &'static str, message: &str) {
        if self.log_budget == 0 {
            self.log_truncated = true;
            return;
        }
        let mut cut = message.len().min(self.log_budget);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        self.log_budget -= cut;
        self.log_truncated |= cut < message.len();
        let text = message[..cut].trim_end_matches('\n').to_owned();
        self.logs.push(LogLine {
            stream,
            message: text,
        });
    }

    /// SplitMix64: deterministic per decision, good enough for hash seeds.
    pub fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_random().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

impl ResourceLimiter for SandboxState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.limit_hit = Some(LimitHit::Memory);
            return Err(wasmtime::Error::msg("policy exceeded its memory limit"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.limit_hit = Some(LimitHit::Table);
            return Err(wasmtime::Error::msg("policy exceeded its table limit"));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        // A Rust guest is a handful of core instances; anything far beyond is hostile.
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        4
    }
}
