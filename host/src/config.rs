//! `tollgate serve` settings: flags, each with an environment variable and a documented default.

use crate::issue::Algorithm;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How to run the exchange server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The server's public URL: `iss` of issued tokens and the base of tenant audiences
    /// (`{public_url}/tenants/{tenant}`). Default: `http://{listen}`.
    #[arg(long, env = "TOLLGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Database URL: `sqlite://PATH` (created on first start) or `postgres://...`.
    /// Default: `sqlite://{data_dir}/tollgate.db`.
    #[arg(long, env = "TOLLGATE_DATABASE")]
    pub database: Option<String>,
    /// Directory for the SQLite database and the compiled-policy cache.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = ".tollgate")]
    pub data_dir: PathBuf,
    /// Operator API key (creates tenants). Default: one is generated on first start and
    /// printed once.
    #[arg(long, env = "TOLLGATE_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    /// Algorithm of new signing keys.
    #[arg(
        long,
        env = "TOLLGATE_SIGNING_ALG",
        value_enum,
        default_value = "ES256"
    )]
    pub signing_alg: Algorithm,
    /// Rotate the signing key after this many seconds (the previous key stays published).
    #[arg(long, env = "TOLLGATE_KEY_ROTATION_SECONDS", default_value_t = 7 * 24 * 3600)]
    pub key_rotation_seconds: u64,
    /// Clock leeway for subject tokens' `exp`, `nbf` and `iat`, in seconds.
    #[arg(long, env = "TOLLGATE_LEEWAY_SECONDS", default_value_t = 60)]
    pub leeway_seconds: u64,
    /// Longest subject-token lifetime accepted (`exp - iat`), in seconds.
    #[arg(long, env = "TOLLGATE_MAX_TOKEN_LIFETIME_SECONDS", default_value_t = 48 * 3600)]
    pub max_token_lifetime_seconds: u64,
    /// Allow `http:` and private/loopback addresses for issuers, JWKS and TokenReview
    /// (local clusters and tests only).
    #[arg(long, env = "TOLLGATE_ALLOW_INSECURE_ISSUERS")]
    pub allow_insecure_issuers: bool,
    /// Default fuel per policy decision (an identity may set up to 10,000,000).
    #[arg(long, env = "TOLLGATE_POLICY_FUEL", default_value_t = 1_000_000)]
    pub policy_fuel: u64,
    /// Largest request body accepted, in bytes (policy uploads included).
    #[arg(long, env = "TOLLGATE_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
}

impl ServeArgs {
    /// The public URL without a trailing slash.
    pub fn public_url(&self) -> String {
        let url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        url.trim_end_matches('/').to_owned()
    }

    /// The database URL.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tollgate.db").display()))
    }
}
