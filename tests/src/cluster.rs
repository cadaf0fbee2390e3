//! A cluster's OIDC issuer on loopback, in this process: `tollgate dev issuer`'s own router over
//! a state directory of keys, and ServiceAccount tokens minted from the same directory the way
//! `tollgate dev token` mints them (the CLI itself is tested in `host/tests/cli/dev.rs`).

use std::path::{Path, PathBuf};
use tollgate::common::unix_now;
use tollgate::dev::{DevState, KUBE_API_ACCESS_SECONDS, ServiceAccountToken, normalize_issuer};

/// A running dev issuer, stopped when dropped (or by [`DevIssuer::stop`]).
pub struct DevIssuer {
    /// The issuer URL (`iss` of its tokens), `http://127.0.0.1:PORT`.
    pub url: String,
    pub state_dir: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

impl DevIssuer {
    /// Serves the keys of `state_dir` (created on first use) on 127.0.0.1:0.
    pub fn start(state_dir: &Path) -> DevIssuer {
        let state = DevState::new(state_dir);
        state.load_or_create(unix_now()).expect("dev keys");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the dev issuer");
        // Bound here, not on the runtime: the caller may itself be inside an async runtime.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dev issuer");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = tollgate::dev::router(state.clone(), &url).expect("dev issuer routes");
        state.record_issuer(&url).expect("record the issuer");
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            tollgate::dev::serve(listener, router, std::future::pending()).await
        });
        DevIssuer {
            url,
            state_dir: state_dir.to_owned(),
            runtime: Some(runtime),
        }
    }

    /// A ServiceAccount token for `namespace`/`service_account` in pod `api-1`, for
    /// `audience`; `extra` takes `dev token` flags.
    pub fn token(
        &self,
        audience: &str,
        namespace: &str,
        service_account: &str,
        extra: &[&str],
    ) -> String {
        let mut args = vec!["--audience", audience, "-n", namespace];
        args.extend(["-s", service_account, "--pod", "api-1"]);
        args.extend_from_slice(extra);
        dev_token(&self.state_dir, &args)
    }

    /// Stops serving: the port no longer answers.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A token minted from the keys of `state_dir` with `tollgate dev token`'s flags (`-n`, `-s`,
/// `--pod`, `--node`, `--audience` (repeatable), `--ttl`, `--extended`, `--issuer`,
/// `--uid-seed`, `--issued-at`), and its defaults: the issuer last served from `state_dir`, an
/// hour's ttl (`--extended`: a pod's default token, 3607 s to `warnafter` and a year to `exp`).
/// Unlike `dev token`, it creates the keys of a fresh `state_dir` (another cluster's keys).
pub fn dev_token(state_dir: &Path, args: &[&str]) -> String {
    let state = DevState::new(state_dir);
    let now = unix_now();
    let mut token = ServiceAccountToken {
        issuer: String::new(),
        namespace: String::new(),
        service_account: String::new(),
        pod: None,
        node: None,
        audiences: Vec::new(),
        ttl_seconds: 3600,
        extended: false,
        issued_at: now,
        uid_seed: "tollgate-dev".into(),
    };
    let mut issuer = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if *flag == "--extended" {
            token.extended = true;
            token.ttl_seconds = KUBE_API_ACCESS_SECONDS;
            continue;
        }
        let value = rest
            .next()
            .unwrap_or_else(|| panic!("`{flag}` needs a value"))
            .to_string();
        match *flag {
            "-n" | "--namespace" => token.namespace = value,
            "-s" | "--service-account" => token.service_account = value,
            "--pod" => token.pod = Some(value),
            "--node" => token.node = Some(value),
            "-a" | "--audience" => token.audiences.push(value),
            "--ttl" => token.ttl_seconds = value.parse().expect("--ttl seconds"),
            "--issuer" => issuer = Some(value),
            "--uid-seed" => token.uid_seed = value,
            "--issued-at" => token.issued_at = value.parse().expect("--issued-at seconds"),
            other => panic!("`dev token` has no flag `{other}` here"),
        }
    }
    let issuer = issuer
        .or_else(|| state.recorded_issuer().expect("dev state"))
        .expect("a dev issuer ran on this state directory, or --issuer");
    token.issuer = normalize_issuer(&issuer).expect("an issuer URL");
    let ring = state.load_or_create(now).expect("dev keys");
    token.mint(ring.current()).expect("mint a token")
}

/// `tollgate dev rotate`: a new current key, the previous one still published.
pub fn rotate(state_dir: &Path) {
    DevState::new(state_dir)
        .rotate(unix_now(), 1)
        .expect("rotate the dev keys");
}
