//! The `tollgate` binary as a child process, for the tests that need one (the CLI, signals, a
//! restart, resident memory): killed when dropped, its output drained into a log so that a
//! full pipe never blocks it, and printed when a test fails.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a process may take to announce itself on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The `tollgate` binary cargo built for the running test (next to the test's `deps/`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = dir.join("tollgate");
    assert!(
        binary.exists(),
        "`{}` is missing: build it with `cargo build -p tollgate`",
        binary.display()
    );
    binary
}

/// `tollgate ARGS` with the test environment: no inherited server settings, `info` logs.
pub fn command() -> Command {
    let mut command = Command::new(binary());
    command
        .env_remove("TOLLGATE_PUBLIC_URL")
        .env_remove("TOLLGATE_DATABASE")
        .env_remove("RUST_LOG")
        .env("TOLLGATE_LOG", "info");
    command
}

/// Which stream announces that the process is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    Stdout,
    Stderr,
}

/// A running child, killed when dropped.
pub struct Child {
    child: std::process::Child,
    /// Everything it printed so far, both streams.
    pub log: Arc<Mutex<String>>,
}

/// Spawns `tollgate ARGS` and waits until `ready` extracts a value from a line of `watch`.
pub fn spawn<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    watch: Watch,
    ready: impl Fn(&str) -> Option<String> + Send + 'static,
) -> (Child, String) {
    spawn_with(args, watch, "info", ready)
}

/// [`spawn`] with `TOLLGATE_LOG` set to `log` (a bench logs less).
pub fn spawn_with<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    watch: Watch,
    log: &str,
    ready: impl Fn(&str) -> Option<String> + Send + 'static,
) -> (Child, String) {
    let mut child = command()
        .env("TOLLGATE_LOG", log)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tollgate");
    let log = Arc::new(Mutex::new(String::new()));
    let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
    let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
    let (watched, other) = match watch {
        Watch::Stdout => (out, err),
        Watch::Stderr => (err, out),
    };
    let (tx, rx) = mpsc::channel();
    drain(watched, log.clone(), Some((tx, Box::new(ready))));
    drain(other, log.clone(), None);
    let mut child = Child { child, log };
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(value) => (child, value),
        Err(_) => {
            child.kill();
            panic!("tollgate did not start:\n{}", child.log.lock().unwrap());
        }
    }
}

type Ready = Box<dyn Fn(&str) -> Option<String> + Send>;

fn drain(
    stream: Box<dyn Read + Send>,
    log: Arc<Mutex<String>>,
    ready: Option<(mpsc::Sender<String>, Ready)>,
) {
    std::thread::spawn(move || {
        let mut ready = ready;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(value) = ready.as_ref().and_then(|(_, f)| f(line.trim())) {
                let (tx, _) = ready.take().unwrap();
                let _ = tx.send(value);
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

impl Child {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGTERM, then waits for the process to finish its shutdown.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the process said, which usually tells why.
        if std::thread::panicking() {
            eprintln!(
                "--- output of tollgate {} ---\n{}",
                self.child.id(),
                self.log.lock().unwrap()
            );
        }
    }
}
