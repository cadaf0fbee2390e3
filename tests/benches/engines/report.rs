//! The table: p50, p99, mean and throughput per engine, ratios to native and sandboxed vs Cedar,
//! and the targets for the sandboxed `rules` policy.

use std::time::Duration;

struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
    per_second: f64,
}

fn summarize(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let total: Duration = samples.iter().sum();
    let n = samples.len();
    Stats {
        p50: us(samples[n / 2]),
        p99: us(samples[n * 99 / 100]),
        mean: us(total) / n as f64,
        // One thread, decisions back to back (the timer's own cost included).
        per_second: n as f64 / total.as_secs_f64(),
    }
}

/// Prints the table; `names[0]` is the sandboxed engine, `names[1]` native, `names[2]` Cedar.
/// `building` is each engine's input building alone, which its row includes.
pub fn print(
    names: &[&str],
    samples: Vec<Vec<Duration>>,
    building: Vec<(&str, Vec<Duration>)>,
    count: usize,
    rounds: usize,
) {
    let stats: Vec<Stats> = samples.into_iter().map(summarize).collect();
    let native = &stats[1];
    println!(
        "\n{count} decisions x {rounds} rounds per engine, one thread, each decision timed on its own"
    );
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>13} {:>12} {:>12}",
        "engine", "p50 µs", "p99 µs", "mean µs", "decisions/s", "p50/native", "thr native/x"
    );
    for (name, s) in names.iter().zip(&stats) {
        println!(
            "{name:<24} {:>9.2} {:>9.2} {:>9.2} {:>13.0} {:>11.2}x {:>11.2}x",
            s.p50,
            s.p99,
            s.mean,
            s.per_second,
            s.p50 / native.p50,
            native.per_second / s.per_second
        );
    }
    println!("of which input building alone (one pass):");
    for (name, times) in building {
        let b = summarize(times);
        println!("  {name:<22} {:>9.2} {:>9.2} {:>9.2}", b.p50, b.p99, b.mean);
    }
    let (sandboxed, cedar) = (&stats[0], &stats[2]);
    println!(
        "sandboxed vs Cedar: p50 {:.2}x, p99 {:.2}x, throughput {:.2}x (Cedar/sandboxed)",
        sandboxed.p50 / cedar.p50,
        sandboxed.p99 / cedar.p99,
        cedar.per_second / sandboxed.per_second
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "target sandboxed p50 <= 10 µs: {} ({:.2} µs)",
        verdict(sandboxed.p50 <= 10.0),
        sandboxed.p50
    );
    println!(
        "target sandboxed no slower than Cedar (p50): {} ({:.2} vs {:.2} µs)",
        verdict(sandboxed.p50 <= cedar.p50),
        sandboxed.p50,
        cedar.p50
    );
    println!(
        "target sandboxed within 3x of native (p50): {} ({:.2}x)",
        verdict(sandboxed.p50 <= 3.0 * native.p50),
        sandboxed.p50 / native.p50
    );
}
