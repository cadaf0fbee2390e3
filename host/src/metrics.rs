//! Prometheus metrics, kept as atomics and rendered in the text exposition format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

static EXCHANGES_ALLOWED: AtomicU64 = AtomicU64::new(0);
static EXCHANGES_DENIED: AtomicU64 = AtomicU64::new(0);
static EXCHANGES_ERRORED: AtomicU64 = AtomicU64::new(0);
static EXCHANGES_RATE_LIMITED: AtomicU64 = AtomicU64::new(0);
static DECISIONS: AtomicU64 = AtomicU64::new(0);
static DECISION_MICROS: AtomicU64 = AtomicU64::new(0);
static FUEL: AtomicU64 = AtomicU64::new(0);
static JWKS_FETCH_OK: AtomicU64 = AtomicU64::new(0);
static JWKS_FETCH_FAILED: AtomicU64 = AtomicU64::new(0);
static STATIC_KEYS_EXPIRING: AtomicU64 = AtomicU64::new(0);
static STATIC_KEYS_EXPIRED: AtomicU64 = AtomicU64::new(0);
/// Decision latency buckets, in microseconds.
const BUCKETS: [u64; 8] = [10, 25, 50, 100, 250, 1000, 10_000, 100_000];
static DECISION_BUCKETS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// Phase latency buckets, in microseconds: where an exchange's stalls are (the bench's stall
/// histogram reads them).
const PHASE_BUCKETS: [u64; 9] = [
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000,
];

/// The phases of an exchange that the `tollgate_exchange_phase_seconds` histogram times.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// The subject token's verification (keys fetched if needed, signature, claims).
    Verify,
    /// The policy module's lookup and the decision, with a shadow candidate's.
    Decide,
    /// The issued token's claims and signature.
    Sign,
    /// Waiting for the decision record's commit (the answer waits for it).
    Audit,
    /// The whole exchange, from the identity found to the record committed.
    Total,
    /// The endpoint's work around it: from the request's form parsed to the answer decided
    /// (rate limits, the token's screening, the identity's lookup, then the exchange).
    Handler,
}

impl Phase {
    const ALL: [Phase; 6] = [
        Phase::Verify,
        Phase::Decide,
        Phase::Sign,
        Phase::Audit,
        Phase::Total,
        Phase::Handler,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Verify => "verify",
            Phase::Decide => "decide",
            Phase::Sign => "sign",
            Phase::Audit => "audit",
            Phase::Total => "total",
            Phase::Handler => "handler",
        }
    }
}

/// A histogram over [`PHASE_BUCKETS`]: the bucket counts, then the count and the sum in
/// microseconds.
struct Histogram([AtomicU64; PHASE_BUCKETS.len() + 2]);

impl Histogram {
    const fn new() -> Self {
        Histogram([const { AtomicU64::new(0) }; PHASE_BUCKETS.len() + 2])
    }

    /// Three atomic additions: the observation's own bucket (not every bucket it is under: six
    /// observations per exchange would have been some 50 contended additions), the count and
    /// the sum. [`Histogram::render`] adds the buckets up.
    fn observe(&self, elapsed: Duration) {
        let micros = elapsed.as_micros() as u64;
        if let Some(bucket) = PHASE_BUCKETS.iter().position(|&limit| micros <= limit) {
            self.0[bucket].fetch_add(1, Relaxed);
        }
        self.0[PHASE_BUCKETS.len()].fetch_add(1, Relaxed);
        self.0[PHASE_BUCKETS.len() + 1].fetch_add(micros, Relaxed);
    }

    /// The histogram's lines, `labels` (`key="value",`) before `le`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bucket, limit) in self.0.iter().zip(PHASE_BUCKETS) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}le=\"{}\"}} {cumulative}",
                limit as f64 / 1e6,
            );
        }
        // Read after the buckets: an observation between the reads is in its bucket already.
        let count = self.0[PHASE_BUCKETS.len()].load(Relaxed).max(cumulative);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let labels = labels.trim_end_matches(',');
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{labels} {}",
            self.0[PHASE_BUCKETS.len() + 1].load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{labels} {count}");
    }
}

static PHASES: [Histogram; Phase::ALL.len()] = [const { Histogram::new() }; Phase::ALL.len()];
static CHECKPOINTS: Histogram = Histogram::new();

/// One exchange's time in `phase`.
pub fn observe_phase(phase: Phase, elapsed: Duration) {
    PHASES[phase as usize].observe(elapsed);
}

/// One WAL checkpoint of the SQLite store (the background copy of the log into the database
/// file, with its sync): the audit log's commits may wait while it syncs.
pub fn observe_checkpoint(elapsed: Duration) {
    CHECKPOINTS.observe(elapsed);
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Allowed,
    Denied,
    Errored,
    /// Refused by a rate limit before any verification or policy work.
    RateLimited,
}

pub fn count_exchange(outcome: Outcome) {
    match outcome {
        Outcome::Allowed => &EXCHANGES_ALLOWED,
        Outcome::Denied => &EXCHANGES_DENIED,
        Outcome::Errored => &EXCHANGES_ERRORED,
        Outcome::RateLimited => &EXCHANGES_RATE_LIMITED,
    }
    .fetch_add(1, Relaxed);
}

/// One fetch of an issuer's keys (discovery + JWKS), successful or not.
pub fn count_jwks_fetch(ok: bool) {
    if ok {
        &JWKS_FETCH_OK
    } else {
        &JWKS_FETCH_FAILED
    }
    .fetch_add(1, Relaxed);
}

/// One verification against a static key set within a week of its expiry, or past it.
pub fn count_static_keys(state: crate::verify::KeysState) {
    use crate::verify::KeysState;
    match state {
        KeysState::Fresh => return,
        KeysState::Expiring => &STATIC_KEYS_EXPIRING,
        KeysState::Expired => &STATIC_KEYS_EXPIRED,
    }
    .fetch_add(1, Relaxed);
}

pub fn observe_decision(elapsed: Duration, fuel: u64) {
    let micros = elapsed.as_micros() as u64;
    DECISIONS.fetch_add(1, Relaxed);
    DECISION_MICROS.fetch_add(micros, Relaxed);
    FUEL.fetch_add(fuel, Relaxed);
    for (bucket, limit) in DECISION_BUCKETS.iter().zip(BUCKETS) {
        if micros <= limit {
            bucket.fetch_add(1, Relaxed);
        }
    }
}

/// The exposition text.
pub fn render() -> String {
    let mut out = String::new();
    out.push_str("# HELP tollgate_exchanges_total Token exchanges by outcome.\n# TYPE tollgate_exchanges_total counter\n");
    for (outcome, counter) in [
        ("allowed", &EXCHANGES_ALLOWED),
        ("denied", &EXCHANGES_DENIED),
        ("error", &EXCHANGES_ERRORED),
        ("rate_limited", &EXCHANGES_RATE_LIMITED),
    ] {
        let _ = writeln!(
            out,
            "tollgate_exchanges_total{{outcome=\"{outcome}\"}} {}",
            counter.load(Relaxed)
        );
    }
    out.push_str("# HELP tollgate_decision_seconds Policy decision latency (fresh instance + evaluate).\n# TYPE tollgate_decision_seconds histogram\n");
    for (bucket, limit) in DECISION_BUCKETS.iter().zip(BUCKETS) {
        let _ = writeln!(
            out,
            "tollgate_decision_seconds_bucket{{le=\"{}\"}} {}",
            limit as f64 / 1e6,
            bucket.load(Relaxed)
        );
    }
    let count = DECISIONS.load(Relaxed);
    let _ = writeln!(
        out,
        "tollgate_decision_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "tollgate_decision_seconds_sum {}",
        DECISION_MICROS.load(Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "tollgate_decision_seconds_count {count}");
    out.push_str("# HELP tollgate_exchange_phase_seconds Time of each phase of an exchange (verify, decide, sign, audit: the record's commit) and of the whole.\n# TYPE tollgate_exchange_phase_seconds histogram\n");
    for phase in Phase::ALL {
        let labels = format!("phase=\"{}\",", phase.name());
        PHASES[phase as usize].render(&mut out, "tollgate_exchange_phase_seconds", &labels);
    }
    out.push_str("# HELP tollgate_wal_checkpoint_seconds Time of each checkpoint of the SQLite store's write-ahead log (the audit log's commits may wait while one syncs).\n# TYPE tollgate_wal_checkpoint_seconds histogram\n");
    CHECKPOINTS.render(&mut out, "tollgate_wal_checkpoint_seconds", "");
    out.push_str("# HELP tollgate_policy_fuel_total Fuel burned by policy decisions.\n# TYPE tollgate_policy_fuel_total counter\n");
    let _ = writeln!(out, "tollgate_policy_fuel_total {}", FUEL.load(Relaxed));
    out.push_str("# HELP tollgate_jwks_fetches_total Fetches of issuer keys by result.\n# TYPE tollgate_jwks_fetches_total counter\n");
    let _ = writeln!(
        out,
        "tollgate_jwks_fetches_total{{result=\"ok\"}} {}",
        JWKS_FETCH_OK.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "tollgate_jwks_fetches_total{{result=\"error\"}} {}",
        JWKS_FETCH_FAILED.load(Relaxed)
    );
    out.push_str("# HELP tollgate_static_keys_checks_total Verifications against a static key set within a week of its expiry, or after it.\n# TYPE tollgate_static_keys_checks_total counter\n");
    for (state, counter) in [
        ("expiring", &STATIC_KEYS_EXPIRING),
        ("expired", &STATIC_KEYS_EXPIRED),
    ] {
        let _ = writeln!(
            out,
            "tollgate_static_keys_checks_total{{state=\"{state}\"}} {}",
            counter.load(Relaxed)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_every_family() {
        super::count_exchange(super::Outcome::Allowed);
        super::observe_decision(std::time::Duration::from_micros(20), 1000);
        super::count_jwks_fetch(true);
        super::observe_phase(super::Phase::Audit, std::time::Duration::from_millis(7));
        let text = super::render();
        // 7 ms is over the 5 ms bucket's bound and under the 10 ms one's.
        let count = |le: &str| -> u64 {
            let key =
                format!("tollgate_exchange_phase_seconds_bucket{{phase=\"audit\",le=\"{le}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&key)).unwrap();
            line[key.len()..].parse().unwrap()
        };
        assert!(
            count("0.01") >= 1 && count("0.01") > count("0.005"),
            "{text}"
        );
        // Buckets are cumulative: the 7 ms observation is under every bound from 10 ms up.
        assert!(
            count("0.25") >= count("0.01") && count("+Inf") >= count("0.25"),
            "{text}"
        );
        for family in [
            "tollgate_exchanges_total{outcome=\"allowed\"}",
            "tollgate_decision_seconds_bucket{le=\"0.000025\"}",
            "tollgate_policy_fuel_total",
            "tollgate_jwks_fetches_total{result=\"ok\"}",
            "tollgate_static_keys_checks_total{state=\"expired\"}",
            "tollgate_exchange_phase_seconds_count{phase=\"total\"}",
            "tollgate_wal_checkpoint_seconds_count ",
        ] {
            assert!(text.contains(family), "{family} missing in\n{text}");
        }
    }
}
