//! A local dev cluster for newcomers and tests: an OIDC issuer on loopback that publishes
//! RS256 keys at the paths Kubernetes uses, and tokens shaped like projected ServiceAccount
//! tokens signed with the same keys. The CLI is `tollgate dev` (`cli/dev.rs`).

mod server;
mod state;
mod token;

use crate::issue::KeyError;
use std::path::PathBuf;

pub use server::{DISCOVERY_PATH, JWKS_PATH, normalize_issuer, router, serve};
pub use state::{DevState, default_dir};
pub use token::{EXTENDED_SECONDS, KUBE_API_ACCESS_SECONDS, ServiceAccountToken, derived_uid};

/// Why a dev command failed.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A file in the state directory could not be read or written.
    #[error("cannot access `{path}`: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source()`).
        cause: std::io::Error,
    },
    /// A file in the state directory does not parse.
    #[error("`{path}` is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `dev token` found no keys: no `dev issuer` was started on this directory.
    #[error(
        "no dev issuer keys in `{}`: start `tollgate dev issuer` first (it creates them), \
         or name the running issuer's directory with --state-dir or TOLLGATE_DEV_STATE_DIR",
        dir.display()
    )]
    NoKeys {
        /// The state directory looked in.
        dir: PathBuf,
    },
    /// No state directory was named and there is no per-user one to default to.
    #[error(
        "neither XDG_STATE_HOME nor HOME is set, so there is no default dev state directory: \
         pass --state-dir DIR or set TOLLGATE_DEV_STATE_DIR"
    )]
    NoStateDir,
    /// A key could not be generated or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The issuer URL is unusable.
    #[error("invalid issuer `{issuer}`: {reason}")]
    InvalidIssuer {
        /// The URL given.
        issuer: String,
        /// Why it is refused.
        reason: String,
    },
    /// A token was asked for without an audience.
    #[error("a token needs at least one audience")]
    NoAudience,
    /// The lifetime is zero or too large.
    #[error("invalid token lifetime `{0}` seconds")]
    InvalidTtl(u64),
    /// The system random generator failed.
    #[error("cannot read random bytes")]
    Random,
    /// The server failed.
    #[error("the dev issuer failed: {0}")]
    Serve(std::io::Error),
}
