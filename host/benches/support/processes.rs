//! The processes a bench runs against: the dev issuer and `tollgate serve`, on loopback,
//! killed when dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tollgate::dev::DevState;
use tollgate::issue::KeyRing;
use tollgate_tests::process::{self, Child, Watch};
pub use tollgate_tests::temp::TempDir;

/// The operator key every bench server starts with.
pub const OPERATOR_KEY: &str = "tg_bench_operator_key_0123456789abcdef";

/// A cluster's OIDC issuer (the test kit's, in this process: it serves its key set once per
/// server, which then caches it), with its keys readable here for minting.
pub struct Issuer {
    _issuer: tollgate_tests::cluster::DevIssuer,
    pub url: String,
    pub keys: KeyRing,
}

impl Issuer {
    pub fn start(state_dir: &Path) -> Issuer {
        let issuer = tollgate_tests::cluster::DevIssuer::start(state_dir);
        let keys = DevState::new(state_dir)
            .load()
            .expect("dev issuer keys")
            .expect("the issuer created its keys");
        Issuer {
            url: issuer.url.clone(),
            _issuer: issuer,
            keys,
        }
    }
}

/// The arguments of every bench server: `serve` on `listen`, loopback issuers allowed, rate
/// limits off, [`OPERATOR_KEY`], data in `data_dir`.
pub fn serve_args<'a>(listen: &'a str, data_dir: &'a str) -> Vec<&'a str> {
    vec![
        "serve",
        "--listen",
        listen,
        "--allow-insecure-issuers",
        "--tenant-rate",
        "0",
        "--identity-rate",
        "0",
        "--client-failure-rate",
        "0",
        "--operator-key",
        OPERATOR_KEY,
        "--data-dir",
        data_dir,
    ]
}

/// `tollgate serve` on `127.0.0.1:0` with rate limits off and [`OPERATOR_KEY`].
pub struct Server {
    child: Child,
    pub url: String,
    pub addr: String,
    data_dir: PathBuf,
}

impl Server {
    /// Starts the server and waits until it listens; also returns how long that took.
    pub fn start(data_dir: &Path) -> (Server, Duration) {
        Server::start_on(data_dir, "127.0.0.1:0")
    }

    /// As [`Server::start`], on a given address (to restart where the tokens point).
    pub fn start_on(data_dir: &Path, listen: &str) -> (Server, Duration) {
        Server::start_with(data_dir, listen, &[])
    }

    /// As [`Server::start_on`], with more `serve` flags (`--database`, ...).
    pub fn start_with(data_dir: &Path, listen: &str, extra: &[&str]) -> (Server, Duration) {
        let started = Instant::now();
        let data = data_dir.to_str().expect("a UTF-8 path");
        let mut args = serve_args(listen, data);
        args.extend_from_slice(extra);
        let (child, addr) = process::spawn_with(&args, Watch::Stderr, "warn", |line| {
            let rest = line.strip_prefix("tollgate listening on http://")?;
            rest.split_whitespace().next().map(str::to_owned)
        });
        let server = Server {
            child,
            url: format!("http://{addr}"),
            addr,
            data_dir: data_dir.to_owned(),
        };
        server.wait_ready();
        (server, started.elapsed())
    }

    /// Polls `/readyz` until it answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if http_status(&self.addr, "/readyz") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("server never became ready:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        self.child.log.lock().expect("log lock").clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the server has used since it started.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    /// Resident memory now and at its peak, in bytes (`VmRSS`, `VmHWM`).
    pub fn memory(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Resident memory by kind of mapping (from `/proc/PID/smaps`), largest first, in bytes.
    pub fn memory_by_kind(&self) -> Vec<(String, u64)> {
        let smaps =
            std::fs::read_to_string(format!("/proc/{}/smaps", self.pid())).unwrap_or_default();
        let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
        let mut kind = String::new();
        let mut region = String::new();
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let first = fields.next().unwrap_or_default();
            if first.contains('-') && !first.ends_with(':') {
                region = first.to_owned();
                let size = first
                    .split_once('-')
                    .and_then(|(a, b)| {
                        Some(u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?)
                    })
                    .unwrap_or(0);
                let name = fields.nth(4).unwrap_or_default();
                kind = if name.is_empty() && size >= 1 << 32 {
                    // Only the pooling allocator reserves this much address space.
                    "wasm instance pool (slots kept warm)".into()
                } else if name.ends_with(".cwasm") {
                    "compiled artifacts (mapped files)".into()
                } else if name.starts_with("/memfd:") {
                    format!("memfd {}", name.trim_start_matches("/memfd:"))
                } else if name.is_empty() {
                    "anonymous (heap arenas, stacks)".into()
                } else {
                    name.to_owned()
                };
            } else if first == "Rss:" {
                let kib: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                *kinds.entry(kind.clone()).or_default() += kib * 1024;
                if kind.starts_with("anonymous") && kib >= 4096 {
                    // Large anonymous regions by name, so one arena or pool stands out.
                    *kinds
                        .entry(format!("  of which one region of {}", region))
                        .or_default() += kib * 1024;
                }
            }
        }
        let mut kinds: Vec<(String, u64)> =
            kinds.into_iter().filter(|(_, b)| *b >= 1 << 20).collect();
        kinds.sort_by_key(|kind| std::cmp::Reverse(kind.1));
        kinds
    }

    /// SIGTERM, then wait for the process to finish its shutdown.
    pub fn stop(mut self) {
        self.child.terminate();
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// A bare HTTP/1.1 GET, for readiness polling without a client library's start-up cost.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// CPU time (user + system, all threads, exited ones included) process `pid` has used, from
/// `/proc/PID/stat`, which counts in USER_HZ (100 per second on Linux).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces: the state
    // is field 3, utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(user), Some(system)) => (user + system) as f64 / 100.0,
        _ => panic!("cannot read the CPU time of process {pid}"),
    }
}
