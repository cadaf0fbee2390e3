//! `tollgate admin`: a client of the server's admin API, so nobody writes curl by hand.
//! `apply -f` reads YAML resources; the other subcommands map one to one onto the API.

mod apply;
mod change;
mod client;
mod documents;
mod inspect;
mod resources;
mod show;

use super::Format;
use client::{AdminError, Client};
use std::path::PathBuf;
use std::process::ExitCode;

/// Talk to a running `tollgate serve`: tenants, issuers, policies, identities, decisions.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  export TOLLGATE_SERVER=http://127.0.0.1:8080
  TOLLGATE_API_KEY=op-secret tollgate admin tenant create acme   # operator key
  export TOLLGATE_API_KEY=tg_...                                  # the key it printed
  tollgate admin apply -f acme.yaml
  tollgate admin simulate acme deployer --claims claims.json
  tollgate admin decisions acme --limit 20

Exit status: 0 on success, 1 when the server refused or could not be reached, 2 when the
command line or an input file cannot be used.")]
pub struct AdminArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Connection")]
struct Connection {
    /// The server's URL.
    #[arg(
        long,
        env = "TOLLGATE_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// An API key: the operator's (tenants) or a tenant's (everything in it).
    #[arg(long, env = "TOLLGATE_API_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
    /// `text` for people, `json` for the server's answers as JSON.
    #[arg(long, value_enum, default_value = "text", global = true)]
    format: Format,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// Create, list and add keys to tenants (create and list need the operator key).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// The token issuers (clusters) a tenant trusts.
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Upload, list and version a tenant's policies; roll back; see a shadow candidate's diff.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Read and delete identities (create or change them with `apply`).
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Apply a YAML file of issuers, policies and identities, in order
    #[command(long_about = apply::LONG_ABOUT, verbatim_doc_comment)]
    Apply(apply::Args),
    /// Dry-run an identity's policy on claims or a real token; nothing is issued or logged
    ///
    /// Example:
    ///   tollgate admin simulate acme deployer --claims claims.json --scope registry.pull
    ///   tollgate admin simulate acme deployer --token-file /var/run/secrets/tokens/sa.token
    #[command(verbatim_doc_comment)]
    Simulate(inspect::SimulateArgs),
    /// The tenant's decision log, newest first: time, event, allowed/denied, code, subject, reason
    ///
    /// Example:
    ///   tollgate admin decisions acme --limit 20
    #[command(verbatim_doc_comment)]
    Decisions(inspect::DecisionsArgs),
    /// Evaluate an identity's recorded decisions with another policy and print what would have
    /// changed (allowed -> denied, denied -> allowed, other scopes or codes)
    ///
    /// Records keep what the policy saw for the server's `--replay-retention-days` (7 by
    /// default). Example:
    ///   tollgate admin replay acme deployer --policy team-scopes@3 --since 24h
    #[command(verbatim_doc_comment)]
    Replay(change::ReplayArgs),
}

#[derive(Debug, clap::Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its first API key (shown once) and its token audience.
    ///
    /// Example:
    ///   TOLLGATE_API_KEY=op-secret tollgate admin tenant create acme
    #[command(verbatim_doc_comment)]
    Create {
        /// 1-63 lowercase letters, digits or `-`.
        name: String,
    },
    /// List tenants (operator key).
    ///
    /// Example:
    ///   tollgate admin tenant list
    #[command(verbatim_doc_comment)]
    List,
    /// Create another API key for a tenant; prints it (shown once). An `introspect` key may
    /// only introspect and revoke the tenant's tokens: give that one to resource servers.
    ///
    /// Examples:
    ///   tollgate admin tenant key acme
    ///   tollgate admin tenant key acme --role introspect
    #[command(verbatim_doc_comment)]
    Key {
        /// The tenant's name.
        name: String,
        /// `admin` (manages the tenant) or `introspect`.
        #[arg(long, default_value = "admin", value_parser = ["admin", "introspect"])]
        role: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum IssuerCommand {
    /// Register or replace an issuer. Keys come from OIDC discovery unless a static JWKS or a
    /// TokenReview server is given.
    ///
    /// Examples:
    ///   tollgate admin issuer put acme dev --url http://127.0.0.1:8081
    ///   tollgate admin issuer put acme air --url https://kubernetes.default.svc \
    ///       --issuer-keys "$(kubectl get --raw /openid/v1/jwks)"     # trusted 30 days
    ///   tollgate admin issuer put acme prod --url https://kubernetes.default.svc \
    ///       --token-review-server https://10.0.0.1:6443 --reviewer-token-file reviewer.token \
    ///       --ca-file ca.pem
    #[command(verbatim_doc_comment)]
    Put(resources::IssuerPut),
    /// List a tenant's issuers.
    ///
    /// Example:
    ///   tollgate admin issuer list acme
    #[command(verbatim_doc_comment)]
    List {
        /// The tenant's name.
        tenant: String,
    },
    /// Show an issuer as an `apply` document (the reviewer token is never shown).
    ///
    /// Example:
    ///   tollgate admin issuer get acme dev
    #[command(verbatim_doc_comment)]
    Get {
        /// The tenant's name.
        tenant: String,
        /// The issuer's name within the tenant.
        name: String,
    },
    /// Delete an issuer.
    ///
    /// Example:
    ///   tollgate admin issuer delete acme dev
    #[command(verbatim_doc_comment)]
    Delete {
        /// The tenant's name.
        tenant: String,
        /// The issuer's name within the tenant.
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum PolicyCommand {
    /// Upload a compiled policy (a `wasm32-wasip2` component). The server validates and
    /// compiles it, runs the cases a bundle carries (`tollgate policy bundle`) and refuses it
    /// if one fails; prints its digest, size and compile time. Under `--name` it is the name's
    /// newest version: identities with `policy: NAME` switch to it once their own cases pass.
    ///
    /// Example:
    ///   tollgate admin policy upload acme target/wasm32-wasip2/release/team_scopes.wasm \
    ///       --name team-scopes --description "team-b gets team-b.deploy"
    #[command(verbatim_doc_comment)]
    Upload {
        /// The tenant's name.
        tenant: String,
        /// The compiled module (`.wasm`).
        file: PathBuf,
        /// The policy name it is a new version of (lowercase letters, digits, `-`).
        #[arg(long)]
        name: Option<String>,
        /// What changed, kept with the version.
        #[arg(long)]
        description: Option<String>,
    },
    /// The versions of a named policy, newest first.
    ///
    /// Example:
    ///   tollgate admin policy versions acme team-scopes
    #[command(verbatim_doc_comment)]
    Versions {
        /// The tenant's name.
        tenant: String,
        /// The policy's name.
        name: String,
    },
    /// Make an older version's module the newest version again (a new version, so the history
    /// keeps both); the identities that follow the name go back once their cases pass.
    ///
    /// Examples:
    ///   tollgate admin policy rollback acme team-scopes           # the version before
    ///   tollgate admin policy rollback acme team-scopes --to 2
    #[command(verbatim_doc_comment)]
    Rollback {
        /// The tenant's name.
        tenant: String,
        /// The policy's name.
        name: String,
        /// The version to restore (default: the newest one before the current with another
        /// module).
        #[arg(long)]
        to: Option<u32>,
    },
    /// How an identity's shadow candidate answered beside its policy: counts by pair of
    /// answers, then examples of disagreement.
    ///
    /// Example:
    ///   tollgate admin policy diff acme deployer --since 24h
    #[command(verbatim_doc_comment)]
    Diff {
        /// The tenant's name.
        tenant: String,
        /// The identity's id within the tenant.
        identity: String,
        /// How far back (`24h`, `7d`, `30m`, or seconds).
        #[arg(long, default_value = "7d", value_parser = change::parse_since)]
        since: u64,
    },
    /// List a tenant's policies (and the built-in ones).
    ///
    /// Example:
    ///   tollgate admin policy list acme
    #[command(verbatim_doc_comment)]
    List {
        /// The tenant's name.
        tenant: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum IdentityCommand {
    /// Show an identity as an `apply` document.
    ///
    /// Example:
    ///   tollgate admin identity get acme deployer > deployer.yaml
    #[command(verbatim_doc_comment)]
    Get {
        /// The tenant's name.
        tenant: String,
        /// The identity's id within the tenant.
        id: String,
    },
    /// List a tenant's identities.
    ///
    /// Example:
    ///   tollgate admin identity list acme
    #[command(verbatim_doc_comment)]
    List {
        /// The tenant's name.
        tenant: String,
    },
    /// Revoke every token the identity issued before now (and their renewals): introspection
    /// answers `active: false` for them and they cannot be renewed.
    ///
    /// Example:
    ///   tollgate admin identity revoke acme deployer
    #[command(verbatim_doc_comment)]
    Revoke {
        /// The tenant's name.
        tenant: String,
        /// The identity's id within the tenant.
        id: String,
    },
    /// Make the identity's shadow candidate its policy; refused while the identity's config
    /// or cases fail on the candidate.
    ///
    /// Example:
    ///   tollgate admin identity promote acme deployer
    #[command(verbatim_doc_comment)]
    Promote {
        /// The tenant's name.
        tenant: String,
        /// The identity's id within the tenant.
        id: String,
    },
    /// Delete an identity; exchanges for it fail from then on.
    ///
    /// Example:
    ///   tollgate admin identity delete acme deployer
    #[command(verbatim_doc_comment)]
    Delete {
        /// The tenant's name.
        tenant: String,
        /// The identity's id within the tenant.
        id: String,
    },
}

/// Runs one admin command on a current-thread runtime (one request at a time).
pub fn run(args: AdminArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn execute(args: AdminArgs) -> Result<(), AdminError> {
    let Connection {
        server,
        key,
        format,
    } = args.connection;
    let client = Client::new(&server, key.as_deref())?;
    let client = &client;
    match args.command {
        AdminCommand::Tenant(command) => match command {
            TenantCommand::Create { name } => resources::create_tenant(client, format, &name).await,
            TenantCommand::List => resources::list_tenants(client, format).await,
            TenantCommand::Key { name, role } => {
                resources::create_key(client, format, &name, &role).await
            }
        },
        AdminCommand::Issuer(command) => match command {
            IssuerCommand::Put(put) => resources::put_issuer(client, format, put).await,
            IssuerCommand::List { tenant } => {
                resources::list_issuers(client, format, &tenant).await
            }
            IssuerCommand::Get { tenant, name } => {
                resources::get_issuer(client, format, &tenant, &name).await
            }
            IssuerCommand::Delete { tenant, name } => {
                resources::delete(client, format, &tenant, ("issuer", "issuers"), &name).await
            }
        },
        AdminCommand::Policy(command) => match command {
            PolicyCommand::Upload {
                tenant,
                file,
                name,
                description,
            } => {
                let upload = resources::Upload {
                    name: name.as_deref(),
                    description: description.as_deref(),
                };
                resources::upload_policy(client, format, &tenant, &file, upload).await
            }
            PolicyCommand::Versions { tenant, name } => {
                change::versions(client, format, &tenant, &name).await
            }
            PolicyCommand::Rollback { tenant, name, to } => {
                change::rollback(client, format, &tenant, &name, to).await
            }
            PolicyCommand::Diff {
                tenant,
                identity,
                since,
            } => change::diff(client, format, &tenant, &identity, since).await,
            PolicyCommand::List { tenant } => {
                resources::list_policies(client, format, &tenant).await
            }
        },
        AdminCommand::Identity(command) => match command {
            IdentityCommand::Get { tenant, id } => {
                resources::get_identity(client, format, &tenant, &id).await
            }
            IdentityCommand::List { tenant } => {
                resources::list_identities(client, format, &tenant).await
            }
            IdentityCommand::Revoke { tenant, id } => {
                resources::revoke_identity(client, format, &tenant, &id).await
            }
            IdentityCommand::Promote { tenant, id } => {
                change::promote(client, format, &tenant, &id).await
            }
            IdentityCommand::Delete { tenant, id } => {
                resources::delete(client, format, &tenant, ("identity", "identities"), &id).await
            }
        },
        AdminCommand::Apply(apply) => apply::run(client, format, apply).await,
        AdminCommand::Simulate(simulate) => inspect::simulate(client, format, simulate).await,
        AdminCommand::Decisions(decisions) => inspect::decisions(client, format, decisions).await,
        AdminCommand::Replay(replay) => change::replay(client, format, replay).await,
    }
}
