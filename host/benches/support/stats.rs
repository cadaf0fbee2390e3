//! Percentiles and the table a bench prints.

use serde::{Deserialize, Serialize};

/// Latencies in microseconds, sorted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn from_micros(mut micros: Vec<u32>) -> Latencies {
        micros.sort_unstable();
        Latencies(micros)
    }

    /// The `p`-th percentile (0..=100) in microseconds; 0 when there is none.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        f64::from(self.0[rank.min(self.0.len() - 1)])
    }

    /// All of `parts`' latencies as one sample.
    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a Latencies>) -> Latencies {
        Latencies::from_micros(
            parts
                .into_iter()
                .flat_map(|l| l.0.iter().copied())
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// How many took longer than `micros`.
    pub fn over(&self, micros: u32) -> usize {
        self.0.len() - self.0.partition_point(|&l| l <= micros)
    }
}

/// Microseconds as milliseconds with three decimals.
pub fn ms(micros: f64) -> String {
    format!("{:.3} ms", micros / 1000.0)
}

/// A row of the targets table: what was measured, the target as text, and whether it was met.
pub fn target(name: &str, measured: String, goal: &str, met: bool) -> Vec<String> {
    let verdict = if met { "met" } else { "MISSED" };
    vec![name.into(), measured, goal.into(), verdict.into()]
}

/// The table of [`target`] rows.
pub fn print_targets(rows: &[Vec<String>]) {
    print_table(&["target", "measured", "target", "verdict"], rows);
}

/// A plain left-aligned table.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// CPU time the process's threads have used (the epoch ticker's too), in nanoseconds from
/// each thread's `/proc/self/task/TID/schedstat` (`/proc/self/stat` counts in 10 ms ticks).
pub fn process_cpu() -> std::time::Duration {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    let nanos = tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("schedstat");
            let stat = std::fs::read_to_string(path).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    std::time::Duration::from_nanos(nanos)
}

/// What the machine takes from a thread that never sleeps: every gap of more than
/// [`Interruptions::GAP`] between two readings of the clock in a tight loop is a time the
/// thread did not run (an interrupt, the hypervisor, another task). On a shared VM these set
/// the tail of anything short: an operation of `d` is hit with a chance of about `rate * d`,
/// and a hit costs it an interruption's length.
#[derive(Debug, Default)]
pub struct Interruptions {
    gaps: Vec<std::time::Duration>,
    spun: std::time::Duration,
}

impl Interruptions {
    /// Shorter gaps are the loop's own (a clock reading is tens of nanoseconds).
    pub const GAP: std::time::Duration = std::time::Duration::from_micros(3);

    /// Spins for `run`, keeping the gaps.
    pub fn spin(&mut self, run: std::time::Duration) {
        let start = std::time::Instant::now();
        let mut last = start;
        while last - start < run {
            let now = std::time::Instant::now();
            if now - last > Self::GAP {
                self.gaps.push(now - last);
            }
            last = now;
        }
        self.spun += last - start;
    }

    /// Interruptions per second of spinning.
    pub fn per_second(&self) -> f64 {
        self.gaps.len() as f64 / self.spun.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The median interruption's length.
    pub fn median(&self) -> std::time::Duration {
        let mut gaps = self.gaps.clone();
        gaps.sort_unstable();
        gaps.get(gaps.len() / 2).copied().unwrap_or_default()
    }

    /// The share of the spinning time that the thread did not run.
    pub fn stolen(&self) -> f64 {
        let lost: std::time::Duration = self.gaps.iter().sum();
        lost.as_secs_f64() / self.spun.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The chance that an operation of `length` is interrupted.
    pub fn chance_for(&self, length: std::time::Duration) -> f64 {
        (self.per_second() * length.as_secs_f64()).min(1.0)
    }

    /// One line: the rate, the median length, the time lost, and what it means for an
    /// operation of `length` (its p99 is an interrupted one when the chance is 1% or more).
    pub fn summary(&self, length: std::time::Duration) -> String {
        let chance = self.chance_for(length);
        format!(
            "the machine: a spinning thread was interrupted {:.0} times a second for {:.1} µs at \
             the median ({:.1}% of its time); a call of {:.2} µs is interrupted with a chance of \
             {:.2}%{}",
            self.per_second(),
            self.median().as_secs_f64() * 1e6,
            self.stolen() * 100.0,
            length.as_secs_f64() * 1e6,
            chance * 100.0,
            if chance >= 0.01 {
                ": 1% or more, so the p99 is an interrupted call"
            } else {
                ""
            }
        )
    }
}
