//! The policy engine: one wasmtime engine and linker, a fresh sandboxed instance per decision.

use super::bindings::{Request, TrustPolicy, TrustPolicyPre, WitDecision};
use super::globs::GlobCache;
use super::limits::{Limits, MAX_FUEL};
use super::module::{self, ArtifactCache, LoadError, ModuleInfo, PolicyModule};
use super::outcome::{Decision, Denial, DenialSource, Evaluation, Grant};
use super::sandbox::{LimitHit, SandboxState};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};
use wasmtime::component::Linker;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
};

/// How often the epoch advances: the granularity of the wall-clock backstop.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Longest message kept from a guest (denials, validation errors).
const MAX_MESSAGE: usize = 1024;

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
#[error("policy engine: {0}")]
pub struct EngineError(String);

/// Loads policy modules and evaluates them, each decision in a fresh instance.
pub struct PolicyEngine {
    engine: Engine,
    linker: Linker<SandboxState>,
    limits: Limits,
    globs: Arc<GlobCache>,
    cache: Option<ArtifactCache>,
    /// Compiling threads, abandoned ones included (`module::MAX_COMPILATIONS`).
    compiling: Arc<AtomicUsize>,
}

impl PolicyEngine {
    /// An engine with the given limits and no artifact cache.
    pub fn new(limits: Limits) -> Result<Self, EngineError> {
        let fail = |e: wasmtime::Error| EngineError(format!("{e:#}"));
        let engine = Engine::new(&engine_config(&limits)).map_err(fail)?;
        let mut linker = Linker::new(&engine);
        super::host_api::add_to_linker(&mut linker).map_err(fail)?;
        super::wasi::add_to_linker(&mut linker).map_err(fail)?;
        spawn_epoch_ticker(&engine);
        Ok(Self {
            engine,
            linker,
            limits,
            globs: Arc::default(),
            cache: None,
            compiling: Arc::default(),
        })
    }

    /// Keeps precompiled artifacts in `dir`, so a restart does not recompile.
    pub fn with_artifact_cache(mut self, dir: &Path) -> Result<Self, EngineError> {
        let cache = ArtifactCache::new(dir, &self.engine)
            .map_err(|e| EngineError(format!("artifact cache `{}`: {e}", dir.display())))?;
        self.cache = Some(cache);
        Ok(self)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates, compiles (or reads the cached artifact) and links a module.
    pub fn load(&self, bytes: &[u8]) -> Result<PolicyModule, LoadError> {
        if bytes.len() > self.limits.module_bytes {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit: self.limits.module_bytes,
            });
        }
        module::check_preamble(bytes)?;
        let digest = module::digest(bytes);
        let started = Instant::now();
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.engine, &digest));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => module::compile(
                &self.engine,
                bytes,
                self.limits.compile_deadline,
                &self.compiling,
            )?,
        };
        let compile_time = if from_cache {
            Duration::ZERO
        } else {
            started.elapsed()
        };
        let component = match (&self.cache, from_cache) {
            (Some(cache), false) => {
                cache.put(&digest, &component)?;
                // Served from the mapped artifact, as after a restart: only the code pages
                // decisions run stay resident (BENCHMARKS.md, scale).
                cache.get(&self.engine, &digest).unwrap_or(component)
            }
            _ => component,
        };
        self.link(component, digest, bytes.len(), compile_time, from_cache)
    }

    /// Links the cached artifact of a module stored earlier, without its bytes: `None` when
    /// there is no usable artifact (another engine configuration wrote it, say), and the module
    /// must be loaded from its bytes with [`PolicyEngine::load`].
    pub fn load_cached(
        &self,
        digest: &str,
        size: usize,
    ) -> Option<Result<PolicyModule, LoadError>> {
        let component = self.cache.as_ref()?.get(&self.engine, digest)?;
        Some(self.link(component, digest.to_owned(), size, Duration::ZERO, true))
    }

    fn link(
        &self,
        component: wasmtime::component::Component,
        digest: String,
        size: usize,
        compile_time: Duration,
        cached: bool,
    ) -> Result<PolicyModule, LoadError> {
        let (imports, exports) = module::inspect(&self.engine, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = TrustPolicyPre::new(pre).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        Ok(PolicyModule {
            pre,
            info: ModuleInfo {
                digest,
                size,
                world: module::WORLD,
                exports,
                imports,
                compile_time,
                cached,
            },
            preparer: None,
        })
    }

    /// Runs one decision with the default fuel budget.
    pub fn evaluate(&self, module: &PolicyModule, request: &Request) -> Evaluation {
        self.evaluate_with_fuel(module, request, self.limits.fuel)
    }

    /// Runs one decision in a fresh instance. Every failure is a denial (fail closed).
    pub fn evaluate_with_fuel(
        &self,
        module: &PolicyModule,
        request: &Request,
        fuel: u64,
    ) -> Evaluation {
        let run = self.run(module, request.exchange.now, fuel, |policy, store| {
            policy.call_evaluate(store, request)
        });
        let decision = match run.result {
            Ok(output) => self.decision(output),
            Err(denial) => Decision::Deny(denial),
        };
        Evaluation {
            decision,
            fuel_used: run.fuel_used,
            elapsed: run.elapsed,
            logs: run.state.logs,
            logs_truncated: run.state.log_truncated,
        }
    }

    /// Runs the module's `validate-config`. `Err` carries the module's message, or the
    /// sandbox's reason when the module failed to answer.
    ///
    /// It runs with the most fuel an identity may give ([`MAX_FUEL`]), not the default: it
    /// runs when a tenant writes an identity, never on the exchange path, and an interpreter
    /// guest (Python, JavaScript) burns 3 to 5 million units before its first line of policy.
    pub fn validate_config(&self, module: &PolicyModule, config: &str) -> Result<(), String> {
        let run = self.run(module, 0, MAX_FUEL, |policy, store| {
            policy.call_validate_config(store, config)
        });
        match run.result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(truncate(message)),
            Err(denial) => Err(format!(
                "policy failed to validate the config ({}): {}",
                denial.code, denial.message
            )),
        }
    }

    fn run<R>(
        &self,
        module: &PolicyModule,
        now: i64,
        fuel: u64,
        call: impl FnOnce(&TrustPolicy, &mut Store<SandboxState>) -> wasmtime::Result<R>,
    ) -> Run<R> {
        let fuel = fuel.min(MAX_FUEL);
        let started = Instant::now();
        let mut store = self.store(now, fuel);
        let result = module
            .pre
            .instantiate(&mut store)
            .and_then(|policy| call(&policy, &mut store));
        let fuel_used = fuel - store.get_fuel().unwrap_or(0);
        let elapsed = started.elapsed();
        let result = result.map_err(|error| classify(&error, store.data()));
        if let Err(denial) = &result {
            tracing::info!(code = %denial.code, reason = %denial.message, fuel_used, "policy failed closed");
        }
        Run {
            result,
            fuel_used,
            elapsed,
            state: store.into_data(),
        }
    }

    /// A fresh store under the sandbox's limits, with `fuel` and the wall-clock deadline.
    fn store(&self, now: i64, fuel: u64) -> Store<SandboxState> {
        let mut store = Store::new(
            &self.engine,
            SandboxState::new(&self.limits, now, self.globs.clone()),
        );
        store.limiter(|state| state);
        store.set_fuel(fuel).expect("fuel is enabled");
        let ticks = self
            .limits
            .wall_clock
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos()) as u64;
        store.set_epoch_deadline(ticks.max(1));
        store
    }

    /// Where one decision's time goes, for the decision bench: the same decision as
    /// [`PolicyEngine::evaluate`], timed in its three phases. Not used to decide anything.
    ///
    /// The same instance then answers the request a second time, which no decision ever does:
    /// the difference between the two calls is what the guest does once per instance (an
    /// interpreter's lazy start-up), and what reusing instances would save.
    pub fn phases(&self, module: &PolicyModule, request: &Request) -> Phases {
        let started = Instant::now();
        let mut store = self.store(request.exchange.now, 2 * MAX_FUEL);
        let instance = module.pre.instantiate(&mut store);
        let instantiated = Instant::now();
        let fuel_before = store.get_fuel().unwrap_or(0);
        let answer = instance.and_then(|policy| {
            let first = policy.call_evaluate(&mut store, request)?;
            Ok((policy, first))
        });
        let called = Instant::now();
        let fuel_after = store.get_fuel().unwrap_or(0);
        let allowed = matches!(answer, Ok((_, WitDecision::Allow(_))));
        let second = answer.ok().map(|(policy, _)| {
            let again = Instant::now();
            let ok = policy.call_evaluate(&mut store, request).is_ok();
            (again.elapsed(), ok)
        });
        let second_fuel = fuel_after - store.get_fuel().unwrap_or(0);
        let dropping = Instant::now();
        drop(store);
        Phases {
            instantiate: instantiated - started,
            call: called - instantiated,
            teardown: dropping.elapsed(),
            second_call: second.and_then(|(t, ok)| ok.then_some(t)),
            fuel: fuel_before - fuel_after,
            second_fuel: second.is_some_and(|(_, ok)| ok).then_some(second_fuel),
            allowed,
        }
    }

    /// Checks the policy's output before anyone relies on it.
    fn decision(&self, output: WitDecision) -> Decision {
        let limit = self.limits.output_bytes;
        match output {
            WitDecision::Deny(d) => {
                if !valid_code(&d.code) {
                    return Decision::Deny(Denial::sandbox(
                        "invalid-output",
                        "policy returned a malformed denial code",
                    ));
                }
                Decision::Deny(Denial {
                    code: d.code,
                    message: truncate(d.message),
                    source: DenialSource::Policy,
                })
            }
            WitDecision::Allow(g) => {
                let size = g.scopes.iter().map(String::len).sum::<usize>()
                    + g.claims
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>();
                if size > limit {
                    return Decision::Deny(Denial::sandbox(
                        "output-too-large",
                        format!("grant is {size} bytes, over the {limit}-byte limit"),
                    ));
                }
                let mut claims = Vec::with_capacity(g.claims.len());
                for (name, json) in g.claims {
                    match serde_json::from_str(&json) {
                        Ok(value) => claims.push((name, value)),
                        Err(_) => {
                            return Decision::Deny(Denial::sandbox(
                                "invalid-output",
                                format!("claim `{name}` is not valid JSON"),
                            ));
                        }
                    }
                }
                Decision::Allow(Grant {
                    scopes: g.scopes,
                    ttl_seconds: g.ttl_seconds,
                    claims,
                })
            }
        }
    }
}

/// One decision's time by phase ([`PolicyEngine::phases`]).
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    /// A fresh store and instance: slot, memory image, start functions.
    pub instantiate: Duration,
    /// Lowering the request, the guest's `evaluate`, lifting its answer.
    pub call: Duration,
    /// Dropping the store: the instance's memory reset for the slot's next use.
    pub teardown: Duration,
    /// The same call again in the same instance (`None` if it failed).
    pub second_call: Option<Duration>,
    /// Fuel of the first call.
    pub fuel: u64,
    /// Fuel of the second call: against [`Phases::fuel`], whether the first call's extra time
    /// is the guest's instructions or the host's (page faults on a fresh memory).
    pub second_fuel: Option<u64>,
    /// Whether the policy allowed (unchecked output).
    pub allowed: bool,
}

struct Run<R> {
    result: Result<R, Denial>,
    fuel_used: u64,
    elapsed: Duration,
    state: SandboxState,
}

fn engine_config(limits: &Limits) -> Config {
    let n = limits.concurrent_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 8)
        .max_memory_size(limits.memory_bytes)
        .table_elements(limits.table_elements)
        // Keep slots resident and reset only the pages a decision dirtied (PAGEMAP_SCAN,
        // Linux 6.7+; elsewhere wasmtime falls back to madvise): no page faults on reuse.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(1 << 16);
    let mut config = Config::new();
    config
        // The native-pc -> wasm-offset map is about a tenth of each compiled module, and with
        // a thousand modules resident it is memory the server keeps for nothing: traps are
        // reported by kind, and guests' own backtraces are not shown to anyone.
        .generate_address_map(false)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.stack_bytes)
        // One thread per compilation: an 18 MiB interpreter guest compiled in parallel took
        // every core and multiplied exchanges' p99 by ten on two cores (BENCHMARKS.md). With
        // the two-compilation bound, uploads take at most two threads.
        .parallel_compilation(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // For profiling only: `perf` then names guests' functions (BENCHMARKS.md).
    if std::env::var_os("TOLLGATE_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Advances the epoch until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("policy-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn epoch thread");
}

/// Maps a failed call to a reason code. Anything unrecognised is still a denial.
fn classify(error: &wasmtime::Error, state: &SandboxState) -> Denial {
    match state.limit_hit {
        Some(LimitHit::Memory) => {
            return Denial::sandbox("memory-limit", "policy exceeded its memory limit");
        }
        Some(LimitHit::Table) => {
            return Denial::sandbox("table-limit", "policy exceeded its table limit");
        }
        Some(LimitHit::Exit) => return Denial::sandbox("policy-exit", "policy called exit"),
        None => {}
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Denial::sandbox("fuel-exhausted", "policy ran out of fuel"),
        Some(Trap::Interrupt) => Denial::sandbox("timeout", "policy exceeded its wall-clock limit"),
        Some(Trap::StackOverflow) => {
            Denial::sandbox("stack-overflow", "policy overflowed its stack")
        }
        Some(trap) => Denial::sandbox("policy-trap", format!("policy trapped: {trap}")),
        None => {
            let text = format!("{error:#}");
            let code = if text.contains("utf-8") || text.contains("UTF-8") {
                "invalid-output"
            } else if text.contains("instance") && text.contains("limit") {
                "sandbox-busy"
            } else {
                "sandbox-error"
            };
            Denial::sandbox(code, truncate(text))
        }
    }
}

fn valid_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message.replace(['\r', '\n'], " ")
}
