//! A local dev cluster for newcomers and tests: an OIDC issuer on loopback that publishes
//! RS256 keys at the paths Kubernetes uses, and tokens shaped like projected ServiceAccount
//! tokens signed with the same keys. The CLI is `tollgate dev` (`cli/dev.rs`).

mod server;
mod state;
mod token;

use crate::issue::KeyError;
use std::path::PathBuf;

pub use server::{DISCOVERY_PATH, JWKS_PATH, normalize_issuer, router, serve};
pub use state::DevState;
pub use token::{ServiceAccountToken, derived_uid};

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
