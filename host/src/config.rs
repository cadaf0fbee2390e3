//! `tollgate serve` settings: flags, each with an environment variable and a documented default.

use crate::api::{Rate, RateLimits};
use crate::issue::Algorithm;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How to run the exchange server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A YAML file with any of the settings below (snake_case keys, e.g. `leeway_seconds: 30`).
    /// Flags and environment variables win over it.
    #[arg(long, env = "TOLLGATE_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// Close a connection whose request line and headers have not all arrived after this many
    /// seconds (slowloris); idle keep-alive connections are closed after the same time.
    #[arg(long, env = "TOLLGATE_HEADER_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_timeout_seconds: u64,
    /// Longest time for a whole exchange request, body included (a body dripped slowly), in
    /// seconds.
    #[arg(long, env = "TOLLGATE_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Most connections open at once; more wait in the listen backlog. 0: no cap.
    #[arg(long, env = "TOLLGATE_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Exchanges per second per tenant, counted when the subject token verified. 0: no limit.
    #[arg(long, env = "TOLLGATE_TENANT_RATE", default_value_t = 200.0)]
    pub tenant_rate: f64,
    /// Exchanges a tenant may make at once above its rate.
    #[arg(long, env = "TOLLGATE_TENANT_BURST", default_value_t = 400)]
    pub tenant_burst: u32,
    /// Exchanges per second per identity, counted when the subject token verified. 0: no
    /// limit.
    #[arg(long, env = "TOLLGATE_IDENTITY_RATE", default_value_t = 50.0)]
    pub identity_rate: f64,
    /// Exchanges an identity may make at once above its rate.
    #[arg(long, env = "TOLLGATE_IDENTITY_BURST", default_value_t = 200)]
    pub identity_burst: u32,
    /// Failed exchanges (unknown identity, token that does not verify) per second per client
    /// address (IPv6: per /64). Behind a proxy all callers share one address. 0: no limit.
    #[arg(long, env = "TOLLGATE_CLIENT_FAILURE_RATE", default_value_t = 100.0)]
    pub client_failure_rate: f64,
    /// Failed exchanges a client address may make at once above its rate.
    #[arg(long, env = "TOLLGATE_CLIENT_FAILURE_BURST", default_value_t = 1000)]
    pub client_failure_burst: u32,
}

impl ServeArgs {
    /// The exchange rate limits (a rate of 0 or less, or not a number, turns one off).
    pub fn rate_limits(&self) -> RateLimits {
        let rate = |per_second: f64, burst: u32| Rate {
            per_second: if per_second > 0.0 { per_second } else { 0.0 },
            burst,
        };
        RateLimits {
            tenant: rate(self.tenant_rate, self.tenant_burst),
            identity: rate(self.identity_rate, self.identity_burst),
            client_failures: rate(self.client_failure_rate, self.client_failure_burst),
        }
    }

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

/// The same settings as a YAML file (`tollgate serve --config FILE`). Flags and environment
/// variables win over the file; the file wins over defaults. Unknown keys are errors.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub database: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub operator_key: Option<String>,
    pub signing_alg: Option<Algorithm>,
    pub key_rotation_seconds: Option<u64>,
    pub leeway_seconds: Option<u64>,
    pub max_token_lifetime_seconds: Option<u64>,
    pub allow_insecure_issuers: Option<bool>,
    pub policy_fuel: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub header_timeout_seconds: Option<u64>,
    pub request_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
    pub tenant_rate: Option<f64>,
    pub tenant_burst: Option<u32>,
    pub identity_rate: Option<f64>,
    pub identity_burst: Option<u32>,
    pub client_failure_rate: Option<f64>,
    pub client_failure_burst: Option<u32>,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file `{path}` is invalid: {message}")]
    Parse { path: PathBuf, message: String },
}

impl ServeArgs {
    /// Fills every setting that was left at its default from the `--config` file.
    pub fn merge_file(&mut self, matches: &clap::ArgMatches) -> Result<(), ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(());
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file: FileConfig = serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let unset = |id: &str| {
            !matches!(
                matches.value_source(id),
                Some(
                    clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable
                )
            )
        };
        macro_rules! take {
            ($field:ident) => {
                if let Some(value) = file.$field
                    && unset(stringify!($field))
                {
                    self.$field = value.into();
                }
            };
        }
        take!(listen);
        take!(public_url);
        take!(database);
        take!(data_dir);
        take!(operator_key);
        take!(signing_alg);
        take!(key_rotation_seconds);
        take!(leeway_seconds);
        take!(max_token_lifetime_seconds);
        take!(allow_insecure_issuers);
        take!(policy_fuel);
        take!(max_body_bytes);
        take!(header_timeout_seconds);
        take!(request_timeout_seconds);
        take!(max_connections);
        take!(tenant_rate);
        take!(tenant_burst);
        take!(identity_rate);
        take!(identity_burst);
        take!(client_failure_rate);
        take!(client_failure_burst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        let matches = Wrapper::command().get_matches_from(args);
        let mut wrapper = Wrapper::from_arg_matches(&matches).unwrap();
        wrapper.serve.merge_file(&matches).unwrap();
        wrapper.serve
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let path =
            std::env::temp_dir().join(format!("tollgate-config-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "listen: 127.0.0.1:9999\nleeway_seconds: 5\nallow_insecure_issuers: true\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let args = parse(&["t", "--config", file, "--leeway-seconds", "7"]);
        assert_eq!(args.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(args.leeway_seconds, 7);
        assert!(args.allow_insecure_issuers);
        assert_eq!(args.policy_fuel, 1_000_000);
        assert_eq!(args.header_timeout_seconds, 10);
        assert!(args.rate_limits().tenant.per_second > 0.0);
        std::fs::write(
            &path,
            "tenant_rate: 0\nidentity_rate: -3\nheader_timeout_seconds: 2\n",
        )
        .unwrap();
        let args = parse(&["t", "--config", file, "--client-failure-rate", "NaN"]);
        assert_eq!(args.header_timeout_seconds, 2);
        assert_eq!(
            args.rate_limits(),
            crate::api::RateLimits {
                tenant: crate::api::Rate {
                    per_second: 0.0,
                    burst: 400
                },
                identity: crate::api::Rate {
                    per_second: 0.0,
                    burst: 200
                },
                client_failures: crate::api::Rate {
                    per_second: 0.0,
                    burst: 1000
                },
            }
        );
        std::fs::write(&path, "listn: 127.0.0.1:1\n").unwrap();
        let matches = Wrapper::command().get_matches_from(["t", "--config", file]);
        let mut wrapper = Wrapper::from_arg_matches(&matches).unwrap();
        let error = wrapper.serve.merge_file(&matches).unwrap_err().to_string();
        assert!(error.contains("unknown field `listn`"), "{error}");
        std::fs::remove_file(&path).unwrap();
    }
}
