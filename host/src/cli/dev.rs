//! `tollgate dev`: a local issuer and ServiceAccount tokens for trying Tollgate without a cluster.

use crate::common::{shutdown_signal, unix_now};
use crate::config::DEFAULT_URL;
use crate::dev::{
    DISCOVERY_PATH, DevError, DevState, JWKS_PATH, KUBE_API_ACCESS_SECONDS, ServiceAccountToken,
    default_dir, normalize_issuer, router, serve,
};
use clap::{Args, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
/// The lifetime of a token without --extended or --ttl.
const DEFAULT_TTL: u64 = 3600;
/// The tenant, namespace, service account and pod of the start-up hint: the README
/// quickstart's, whose identity `deployer` allows namespace `prod`.
const HINT_TENANT: &str = "acme";
const HINT_TOKEN_FLAGS: &str = "--namespace prod --service-account deployer --pod api-1";

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Serve a local OIDC issuer that looks like a Kubernetes cluster's
    ///
    /// Serves `/.well-known/openid-configuration` and `/openid/v1/jwks` (RS256 keys, like a
    /// real cluster). The keys live in the state directory (one per user by default, see
    /// --state-dir), created on first run, so `tollgate dev token` in another shell, in any
    /// directory, signs with the same key. Stop with Ctrl-C.
    ///
    /// Example:
    ///   tollgate dev issuer
    ///   tollgate dev issuer --server http://127.0.0.1:9000   # where `tollgate serve` listens
    ///   tollgate dev issuer --listen 127.0.0.1:0 --state-dir /tmp/cluster-a
    #[command(verbatim_doc_comment)]
    Issuer(IssuerArgs),
    /// Print a token shaped like a Kubernetes projected ServiceAccount token
    ///
    /// Claims: aud, exp, iat, nbf, iss, jti, sub = system:serviceaccount:NS:SA, and
    /// kubernetes.io {namespace, serviceaccount, pod, node, warnafter}. Uids are derived
    /// from the names, so minting again gives the same ServiceAccount uid; change
    /// --uid-seed to simulate deleting and recreating the objects. Signs with the current
    /// key of the state directory, which `tollgate dev issuer` creates: start it first.
    ///
    /// Example:
    ///   tollgate dev token --namespace prod --service-account deployer \
    ///     --pod api-0 --audience http://127.0.0.1:8080/tenants/acme
    ///   tollgate dev token -n prod -s deployer --pod api-0 --extended \
    ///     --audience http://127.0.0.1:8080/tenants/acme   # a pod's default token
    #[command(verbatim_doc_comment)]
    Token(TokenArgs),
    /// Add a new signing key and make it current; the previous key stays published
    ///
    /// A running `dev issuer` on the same state directory serves the new key set at once.
    ///
    /// Example:
    ///   tollgate dev rotate
    #[command(verbatim_doc_comment)]
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Directory holding the issuer's keys and the URL of the last issuer started on it,
    /// shared by `dev issuer`, `dev token` and `dev rotate`. Default: one per user, whatever
    /// the current directory: $XDG_STATE_HOME/tollgate/dev, else
    /// ~/.local/state/tollgate/dev.
    #[arg(long, env = "TOLLGATE_DEV_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

impl StateArgs {
    /// The directory named, else the per-user default.
    fn state(&self) -> Result<DevState, DevError> {
        match &self.state_dir {
            Some(dir) => Ok(DevState::new(dir)),
            None => default_dir(|name| std::env::var_os(name))
                .map(DevState::new)
                .ok_or(DevError::NoStateDir),
        }
    }
}

#[derive(Debug, Args)]
pub struct IssuerArgs {
    /// Address to listen on; keep it on loopback. Port 0 picks a free port.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    #[command(flatten)]
    state: StateArgs,
    /// The `iss` of the tokens and of discovery (default: http://<listen address>).
    #[arg(long)]
    issuer: Option<String>,
    /// Add a new current key before serving, keeping the previous one published.
    #[arg(long)]
    rotate: bool,
    /// Previous keys to keep published when rotating.
    #[arg(long, default_value_t = 1)]
    keep_previous: usize,
    /// The Tollgate server's public URL, for the audience in the start-up hint
    /// ({server}/tenants/{tenant}); the default is where `tollgate serve` listens by default.
    #[arg(long, env = "TOLLGATE_SERVER", default_value = DEFAULT_URL)]
    server: String,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Namespace of the service account.
    #[arg(long, short = 'n')]
    namespace: String,
    /// Service account name.
    #[arg(long, short = 's')]
    service_account: String,
    /// Bind the token to this pod.
    #[arg(long)]
    pod: Option<String>,
    /// Bind the token to this node.
    #[arg(long)]
    node: Option<String>,
    /// Audience (repeatable). Tollgate's default audience is {public_url}/tenants/{tenant}.
    #[arg(long = "audience", short = 'a')]
    audiences: Vec<String>,
    /// Lifetime in seconds [default: 3600].
    #[arg(long)]
    ttl: Option<u64>,
    /// Mint a pod's default token (the kube-api-access volume), whose expiry the API server
    /// extends: exp a year after iat, kubernetes.io.warnafter 3607 seconds after it.
    #[arg(long, conflicts_with = "ttl")]
    extended: bool,
    #[command(flatten)]
    state: StateArgs,
    /// The `iss` (default: the URL of the last `dev issuer` started on the state directory,
    /// else http://127.0.0.1:8081).
    #[arg(long)]
    issuer: Option<String>,
    /// Seed of the derived uids; change it to simulate delete-and-recreate.
    #[arg(long, default_value = "tollgate-dev")]
    uid_seed: String,
    /// Issue time, seconds since the epoch, to mint expired or future tokens (default: now).
    #[arg(long)]
    issued_at: Option<i64>,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Previous keys to keep published.
    #[arg(long, default_value_t = 1)]
    keep_previous: usize,
}

/// Runs a `tollgate dev` command.
pub fn run(command: DevCommand) -> ExitCode {
    let result = match command {
        DevCommand::Issuer(args) => issuer(args),
        DevCommand::Token(args) => token(args),
        DevCommand::Rotate(args) => rotate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(DevError::NoAudience) => {
            eprintln!(
                "error: pass --audience: the audience Tollgate expects for a tenant is \
                 {{public_url}}/tenants/{{tenant}}, e.g. --audience http://127.0.0.1:8080/tenants/acme"
            );
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn issuer(args: IssuerArgs) -> Result<(), DevError> {
    let state = args.state.state()?;
    let ring = if args.rotate {
        state.rotate(unix_now(), args.keep_previous)?
    } else {
        state.load_or_create(unix_now())?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(DevError::Serve)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(DevError::Serve)?;
        let address = listener.local_addr().map_err(DevError::Serve)?;
        let issuer = normalize_issuer(&args.issuer.unwrap_or_else(|| format!("http://{address}")))?;
        let app = router(state.clone(), &issuer)?;
        state.record_issuer(&issuer)?;
        let dir = state.dir().display();
        let stop = shutdown_signal();
        println!("tollgate dev issuer on {address}");
        println!("  issuer     {issuer}");
        println!("  discovery  {issuer}{DISCOVERY_PATH}");
        println!("  jwks       {issuer}{JWKS_PATH}");
        println!("  keys       {dir} (current kid {})", ring.current().kid());
        println!("next, in another shell: a token for the README quickstart's identity");
        println!("  {}", hint(&args.server, args.state.state_dir.as_deref()));
        println!("Ctrl-C stops the issuer.");
        let _ = std::io::stdout().flush();
        serve(listener, app, stop).await?;
        println!("dev issuer stopped");
        Ok(())
    })
}

/// The `dev token` command of the start-up hint: the quickstart's token for the server at
/// `server`, naming the state directory only when it is not the default.
fn hint(server: &str, state_dir: Option<&std::path::Path>) -> String {
    let state = state_dir
        .map(|dir| format!(" --state-dir {}", dir.display()))
        .unwrap_or_default();
    let server = server.trim_end_matches('/');
    format!(
        "tollgate dev token{state} {HINT_TOKEN_FLAGS} --audience {server}/tenants/{HINT_TENANT}"
    )
}

fn token(args: TokenArgs) -> Result<(), DevError> {
    if args.audiences.is_empty() {
        return Err(DevError::NoAudience);
    }
    let state = args.state.state()?;
    let issuer = match args.issuer {
        Some(issuer) => issuer,
        None => state
            .recorded_issuer()?
            .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}")),
    };
    let now = unix_now();
    // Never keys of its own: a token the running issuer cannot verify would fail far away.
    let ring = state.existing()?;
    let request = ServiceAccountToken {
        issuer: normalize_issuer(&issuer)?,
        namespace: args.namespace,
        service_account: args.service_account,
        pod: args.pod,
        node: args.node,
        audiences: args.audiences,
        ttl_seconds: match (args.ttl, args.extended) {
            (Some(ttl), _) => ttl,
            (None, true) => KUBE_API_ACCESS_SECONDS,
            (None, false) => DEFAULT_TTL,
        },
        extended: args.extended,
        issued_at: args.issued_at.unwrap_or(now),
        uid_seed: args.uid_seed,
    };
    println!("{}", request.mint(ring.current())?);
    Ok(())
}

fn rotate(args: RotateArgs) -> Result<(), DevError> {
    let state = args.state.state()?;
    let ring = state.rotate(unix_now(), args.keep_previous)?;
    println!("current kid {}", ring.current().kid());
    for key in ring.previous() {
        println!("previous kid {} (still published)", key.kid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_the_server_and_only_a_chosen_state_dir() {
        assert_eq!(
            hint("http://127.0.0.1:9000/", None),
            "tollgate dev token --namespace prod --service-account deployer --pod api-1 \
             --audience http://127.0.0.1:9000/tenants/acme"
        );
        let named = hint(DEFAULT_URL, Some(std::path::Path::new("/tmp/c")));
        assert!(
            named.starts_with("tollgate dev token --state-dir /tmp/c --namespace prod"),
            "{named}"
        );
        assert!(named.ends_with(" --audience http://127.0.0.1:8080/tenants/acme"));
    }
}
