//! The load generator: the bench binary run again as a separate process, so that the client's
//! work is not counted as the server's (it still shares the machine's cores, as a real sidecar
//! client would not).
//!
//! One thread, HTTP/1.1 keep-alive connections, request bodies built before the clock starts.
//! Closed loop (`rate: None`): every connection sends its next request as soon as the previous
//! answer arrives; that measures peak throughput. Open loop (`rate: Some(r)`): request `i` is due
//! at `start + i / r`; when no connection is free by then, its latency counts from that moment,
//! not from when one was free to send it, so a server that falls behind is charged for the queue
//! it causes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::stats::Latencies;

const PLAN_ENV: &str = "TOLLGATE_BENCH_LOADGEN_PLAN";

/// Which request the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    /// `POST /oauth2/token` with the plan's form bodies, round-robin.
    Exchange,
    /// `GET /healthz`: the cheapest answer the server gives, through the same HTTP stack and
    /// generator (the HTTP floor).
    Health,
}

/// What to send, where, and for how long.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    pub endpoint: Endpoint,
    /// Form bodies for [`Endpoint::Exchange`].
    pub bodies: Vec<String>,
    pub connections: usize,
    /// Requests due to finish before this are not measured.
    pub warmup: Duration,
    pub duration: Duration,
    /// Requests per second (open loop), or `None` for as fast as answers come (closed loop).
    pub rate: Option<f64>,
}

/// What the load generator saw in the measured window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// Answers with status 200.
    pub ok: u64,
    /// Any other answer, or a connection error.
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Latency of each measured answer, in microseconds.
    pub latencies: Latencies,
    /// Answers with status 200 over the whole run, warm-up included.
    pub answers: u64,
    /// CPU time the generator itself used over the whole run.
    pub cpu_seconds: f64,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    /// Several measured windows as one.
    pub fn merged(parts: &[Outcome]) -> Outcome {
        Outcome {
            ok: parts.iter().map(|o| o.ok).sum(),
            errors: parts.iter().map(|o| o.errors).sum(),
            first_error: parts.iter().find_map(|o| o.first_error.clone()),
            seconds: parts.iter().map(|o| o.seconds).sum(),
            latencies: Latencies::merged(parts.iter().map(|o| &o.latencies)),
            answers: parts.iter().map(|o| o.answers).sum(),
            cpu_seconds: parts.iter().map(|o| o.cpu_seconds).sum(),
        }
    }
}

/// Call first in a bench's `main`: when this process was started as the load generator, runs
/// the plan, writes the outcome next to it and exits.
pub fn run_if_requested() {
    let Ok(path) = std::env::var(PLAN_ENV) else {
        return;
    };
    let plan: Plan = serde_json::from_slice(&std::fs::read(&path).expect("read the plan"))
        .expect("parse the plan");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(tokio::task::LocalSet::new().run_until(drive(plan)));
    std::fs::write(
        format!("{path}.out"),
        serde_json::to_vec(&outcome).expect("outcome"),
    )
    .expect("write the outcome");
    std::process::exit(0);
}

/// Runs `plan` in a new process and returns what it measured. Panics when any exchange
/// failed or none completed: numbers from refused exchanges would flatter the server.
pub fn run(plan: &Plan, scratch: &Path) -> Outcome {
    let path = scratch.join("loadgen-plan.json");
    std::fs::write(&path, serde_json::to_vec(plan).expect("plan")).expect("write the plan");
    let status = Command::new(std::env::current_exe().expect("this bench's path"))
        .env(PLAN_ENV, &path)
        .status()
        .expect("start the load generator");
    assert!(status.success(), "load generator failed: {status}");
    let out = std::fs::read(path.with_extension("json.out")).expect("read the outcome");
    let outcome: Outcome = serde_json::from_slice(&out).expect("parse the outcome");
    assert!(
        outcome.errors == 0,
        "{} requests failed under load; first: {}",
        outcome.errors,
        outcome.first_error.as_deref().unwrap_or("?")
    );
    assert!(
        outcome.ok > 0,
        "no request completed in the measured window"
    );
    outcome
}

struct Shared {
    bodies: Vec<Bytes>,
    next: Cell<u64>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    rate: Option<f64>,
    endpoint: Endpoint,
    answers: Cell<u64>,
    ok: Cell<u64>,
    errors: Cell<u64>,
    first_error: RefCell<Option<String>>,
    latencies: RefCell<Vec<u32>>,
}

async fn drive(plan: Plan) -> Outcome {
    // A moment for every connection to be open before the first request is due.
    let start = Instant::now() + Duration::from_millis(200);
    let shared = Rc::new(Shared {
        bodies: plan.bodies.iter().map(|b| Bytes::from(b.clone())).collect(),
        next: Cell::new(0),
        start,
        measure_from: start + plan.warmup,
        end: start + plan.warmup + plan.duration,
        rate: plan.rate,
        endpoint: plan.endpoint,
        answers: Cell::new(0),
        ok: Cell::new(0),
        errors: Cell::new(0),
        first_error: RefCell::new(None),
        latencies: RefCell::new(Vec::with_capacity(1 << 20)),
    });
    let tasks: Vec<_> = (0..plan.connections)
        .map(|_| tokio::task::spawn_local(connection(plan.addr.clone(), shared.clone())))
        .collect();
    for task in tasks {
        if let Err(error) = task.await.expect("connection task") {
            shared.errors.set(shared.errors.get() + 1);
            shared.first_error.borrow_mut().get_or_insert(error);
        }
    }
    let latencies = Latencies::from_micros(shared.latencies.take());
    Outcome {
        ok: shared.ok.get(),
        errors: shared.errors.get(),
        first_error: shared.first_error.take(),
        seconds: plan.duration.as_secs_f64(),
        latencies,
        answers: shared.answers.get(),
        cpu_seconds: super::processes::cpu_seconds(std::process::id()),
    }
}

async fn connection(addr: String, shared: Rc<Shared>) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::task::spawn_local(conn);
    tokio::time::sleep_until(shared.start.into()).await;
    loop {
        let i = shared.next.get();
        shared.next.set(i + 1);
        let due = match shared.rate {
            Some(rate) => shared.start + Duration::from_secs_f64(i as f64 / rate),
            None => Instant::now(),
        };
        if due >= shared.end {
            return Ok(());
        }
        // Tokio's timer wakes up to a millisecond late. When this connection was free before
        // the request was due, that lateness is the generator's and the clock starts at the
        // send; when it was still waiting for the server, the clock starts when it was due.
        let free_at = Instant::now();
        // Only when it is not yet due: Tokio's timer rounds up to its next millisecond tick,
        // so even a sleep until now would hold the request back.
        if due > free_at {
            tokio::time::sleep_until(due.into()).await;
        }
        let start = if free_at > due { due } else { Instant::now() };
        let (builder, body) = match shared.endpoint {
            Endpoint::Exchange => (
                Request::post("/oauth2/token")
                    .header("content-type", "application/x-www-form-urlencoded"),
                shared.bodies[(i % shared.bodies.len() as u64) as usize].clone(),
            ),
            Endpoint::Health => (Request::get("/healthz"), Bytes::new()),
        };
        let request = builder
            .header("host", &addr)
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        sender
            .ready()
            .await
            .map_err(|e| format!("connection closed: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let answer = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        let done = Instant::now();
        if status == 200 {
            shared.answers.set(shared.answers.get() + 1);
        }
        if done < shared.measure_from || done >= shared.end {
            continue;
        }
        if status == 200 {
            shared.ok.set(shared.ok.get() + 1);
            let micros = u32::try_from(done.duration_since(start).as_micros()).unwrap_or(u32::MAX);
            shared.latencies.borrow_mut().push(micros);
        } else {
            shared.errors.set(shared.errors.get() + 1);
            shared
                .first_error
                .borrow_mut()
                .get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&answer)));
        }
    }
}
