//! The `tollgate` command line. One file per subcommand under `cli/`.

mod admin;
mod dev;
mod policy_bundle;
mod policy_check;
mod policy_new;
mod policy_test;
mod serve;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Tollgate exchanges Kubernetes ServiceAccount tokens for short-lived access tokens, when the
/// target identity's trust policy (a sandboxed WebAssembly component) allows it.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the token exchange server (SQLite in `.tollgate/` unless `--database` says otherwise).
    ///
    /// Example:
    ///   tollgate serve --listen 127.0.0.1:8080
    #[command(verbatim_doc_comment)]
    Serve(crate::config::ServeArgs),
    /// Build-time tools for policy authors: check and unit-test compiled policy modules.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// A local dev cluster: an OIDC issuer on loopback and ServiceAccount tokens it signs
    ///
    /// Example:
    ///   tollgate dev issuer
    ///   tollgate dev token -n default -s default --audience http://127.0.0.1:8080/tenants/acme
    #[command(subcommand, verbatim_doc_comment)]
    Dev(dev::DevCommand),
    /// Manage a running server over its admin API: tenants, issuers, policies, identities
    ///
    /// Example:
    ///   export TOLLGATE_SERVER=http://127.0.0.1:8080 TOLLGATE_API_KEY=<tenant key>
    ///   tollgate admin apply -f acme.yaml
    ///   tollgate admin decisions acme
    #[command(verbatim_doc_comment)]
    Admin(admin::AdminArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run a compiled policy against the cases in a YAML file, through the server's sandbox.
    ///
    /// Prints one line per case with the fuel it used and ends with `N passed, N failed`.
    /// Exit status: 0 when every case passes, 1 when one fails, 2 when the module or the
    /// cases file cannot be used.
    ///
    /// MODULE is a `.wasm` file, or `builtin:rules` or `builtin:cel` for the stock policies
    /// this binary carries (a CEL config needs no build: `module: builtin:cel` in the cases
    /// file, or `tollgate policy test builtin:cel cases.yaml`).
    ///
    /// Example: tollgate policy test policies/rules/cases.yaml
    Test(policy_test::Args),
    /// Run the upload validation on a module and print what it found.
    ///
    /// Checks that it is a component implementing `tollgate:policy/trust-policy`, that it
    /// imports nothing beyond the minimal WASI set, its size and compile time.
    /// Exit status: 0 when the module would be accepted, 1 when not, 2 when it cannot be read.
    ///
    /// Example: tollgate policy check target/wasm32-wasip2/release/rules.wasm
    Check(policy_check::Args),
    /// Write a policy project in Rust, Python or JavaScript that builds and passes its own
    /// cases (`./NAME/build.sh`), using the SDKs of the Tollgate source tree (`--sdk`).
    ///
    /// Example: tollgate policy new --lang python team-policy
    New(policy_new::Args),
    /// Put a module's cases inside it (a `tollgate-cases` custom section), after running them:
    /// the server runs a bundle's cases at upload and refuses the module if one fails.
    ///
    /// Example:
    ///   tollgate policy bundle target/wasm32-wasip2/release/team_scopes.wasm \
    ///       policies/team-scopes/cases.yaml -o team_scopes.bundle.wasm
    ///   tollgate admin policy upload acme team_scopes.bundle.wasm --name team-scopes
    #[command(verbatim_doc_comment)]
    Bundle(policy_bundle::Args),
}

/// Output format for commands that report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document, for machines.
    Json,
}

/// Parses arguments and runs the command.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    init_tracing();
    match cli.command {
        Command::Serve(args) => {
            let serve_matches = matches.subcommand_matches("serve").expect("serve matched");
            match args.with_file(serve_matches) {
                Ok(args) => serve::run(args),
                Err(error) => {
                    eprintln!("error: {:#}", anyhow::Error::new(error));
                    ExitCode::from(2)
                }
            }
        }
        Command::Policy(PolicyCommand::Test(args)) => policy_test::run(args),
        Command::Policy(PolicyCommand::Check(args)) => policy_check::run(args),
        Command::Policy(PolicyCommand::New(args)) => policy_new::run(args),
        Command::Policy(PolicyCommand::Bundle(args)) => policy_bundle::run(args),
        Command::Dev(command) => dev::run(command),
        Command::Admin(args) => admin::run(args),
    }
}

/// Logs go to stderr. `TOLLGATE_LOG` is a `tracing` filter (default `warn`; `info` shows each
/// denied exchange with its reason); `TOLLGATE_LOG_FORMAT=json` writes one JSON object per line.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("TOLLGATE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
