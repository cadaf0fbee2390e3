//! The processes a bench runs against: the dev issuer and `tollgate serve`, on loopback,
//! killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tollgate::dev::DevState;
use tollgate::issue::KeyRing;

/// The operator key every bench server starts with.
pub const OPERATOR_KEY: &str = "tg_bench_operator_key_0123456789abcdef";

/// The `tollgate` binary Cargo built for this bench.
pub fn tollgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("tollgate-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tollgate dev issuer`: a cluster's OIDC issuer, with its keys readable here for minting.
pub struct Issuer {
    child: Child,
    pub url: String,
    pub keys: KeyRing,
}

impl Issuer {
    pub fn start(state_dir: &Path) -> Issuer {
        // The key is created here first so that the issuer serves the key tokens are minted with.
        let keys = DevState::new(state_dir)
            .load_or_create(tollgate::common::unix_now())
            .expect("dev issuer keys");
        let mut child = tollgate()
            .args(["dev", "issuer", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the dev issuer");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let url = loop {
            line.clear();
            assert!(
                stdout
                    .read_line(&mut line)
                    .expect("read the issuer's output")
                    > 0,
                "dev issuer exited early"
            );
            if let Some(rest) = line.trim().strip_prefix("issuer ") {
                break rest.trim().to_owned();
            }
        };
        // Keep draining: the issuer prints when it stops.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Issuer { child, url, keys }
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tollgate serve` on `127.0.0.1:0` with rate limits off and [`OPERATOR_KEY`].
pub struct Server {
    child: Child,
    pub url: String,
    pub addr: String,
    log: Arc<Mutex<String>>,
    data_dir: PathBuf,
}

impl Server {
    /// Starts the server and waits until it listens; also returns how long that took.
    pub fn start(data_dir: &Path) -> (Server, Duration) {
        Server::start_on(data_dir, "127.0.0.1:0")
    }

    /// As [`Server::start`], on a given address (to restart where the tokens point).
    pub fn start_on(data_dir: &Path, listen: &str) -> (Server, Duration) {
        let started = Instant::now();
        let mut child = tollgate()
            .args(["serve", "--listen", listen, "--allow-insecure-issuers"])
            .args([
                "--tenant-rate",
                "0",
                "--identity-rate",
                "0",
                "--client-failure-rate",
                "0",
            ])
            .args(["--operator-key", OPERATOR_KEY, "--data-dir"])
            .arg(data_dir)
            .env_remove("TOLLGATE_PUBLIC_URL")
            .env_remove("TOLLGATE_DATABASE")
            .env("TOLLGATE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tollgate serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready, listening) = mpsc::channel();
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(rest) = line.trim().strip_prefix("tollgate listening on http://") {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = ready.send(addr);
                }
                sink.lock().expect("log lock").push_str(&line);
                line.clear();
            }
        });
        let Ok(addr) = listening.recv_timeout(Duration::from_secs(300)) else {
            let _ = child.kill();
            panic!("server did not start:\n{}", log.lock().expect("log lock"));
        };
        let server = Server {
            child,
            url: format!("http://{addr}"),
            addr,
            log,
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
        self.log.lock().expect("log lock").clone()
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
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let _ = self.child.wait();
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
