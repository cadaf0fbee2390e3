//! `tollgate serve` settings: flags, each with an environment variable and a documented default.

use crate::issue::Algorithm;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where `tollgate serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The server's URL when it listens on [`DEFAULT_LISTEN`] with no `--public-url`: where the
/// dev tools point a newcomer.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// How to run the exchange server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A YAML file with any of the settings below (snake_case keys, e.g. `leeway_seconds: 30`).
    /// Flags and environment variables win over it.
    #[arg(long, env = "TOLLGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = DEFAULT_LISTEN)]
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
    /// Longest lifetime of any token this server issues, in seconds: an identity's longer
    /// `ttl_seconds` is accepted with a warning and clamped to this. Signing keys stay
    /// published this long after they stop signing.
    #[arg(long, env = "TOLLGATE_MAX_ISSUED_TTL_SECONDS", default_value_t = 24 * 3600,
          value_parser = clap::value_parser!(u32).range(60..))]
    pub max_issued_ttl_seconds: u32,
    /// Delete decision records older than this many days, in the background (0: keep them).
    #[arg(long, env = "TOLLGATE_DECISION_RETENTION_DAYS", default_value_t = 30)]
    pub decision_retention_days: u32,
    /// Keep what the policy saw (the verified claims and the exchange, never the token) in
    /// decision records for this many days, for `admin replay`; 0: never keep it.
    #[arg(long, env = "TOLLGATE_REPLAY_RETENTION_DAYS", default_value_t = 7)]
    pub replay_retention_days: u32,
    /// How many replicas share the rate limits: each enforces its share (the configured
    /// rates and bursts divided by this), so that together they allow the configured totals.
    #[arg(long, env = "TOLLGATE_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub replicas: u32,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers name the client (addresses or
    /// CIDR ranges, comma-separated). Without it the client is the socket's peer, always.
    #[arg(
        long,
        env = "TOLLGATE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<String>,
    /// Allow `http:` and private/loopback addresses for issuers, JWKS and TokenReview
    /// (local clusters and tests only).
    #[arg(long, env = "TOLLGATE_ALLOW_INSECURE_ISSUERS")]
    pub allow_insecure_issuers: bool,
    /// Default fuel per policy decision (an identity may set up to 10,000,000).
    #[arg(long, env = "TOLLGATE_POLICY_FUEL", default_value_t = 1_000_000)]
    pub policy_fuel: u64,
    /// Largest request body accepted on the admin API, in bytes. Policy uploads may always
    /// be as large as `--policy-max-module-bytes`.
    #[arg(long, env = "TOLLGATE_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    /// Largest policy module accepted, in bytes. The default fits an interpreter guest: a
    /// componentize-py component (CPython and its standard library) is about 18 MiB, a
    /// componentize-js one (SpiderMonkey) about 12 MiB.
    #[arg(long, env = "TOLLGATE_POLICY_MAX_MODULE_BYTES", default_value_t = crate::policy::limits::DEFAULT_MODULE_BYTES)]
    pub policy_max_module_bytes: usize,
    /// Linear memory cap per policy instance, in bytes (also the pooling allocator's slot
    /// size). The default fits an interpreter guest's initial heap with room for a decision.
    #[arg(long, env = "TOLLGATE_POLICY_MEMORY_BYTES", default_value_t = crate::policy::limits::DEFAULT_MEMORY_BYTES)]
    pub policy_memory_bytes: usize,
    /// Deadline for compiling an uploaded module, in seconds. The default leaves an interpreter
    /// guest several times the time it takes on two busy cores.
    #[arg(long, env = "TOLLGATE_POLICY_COMPILE_SECONDS", default_value_t = crate::policy::limits::DEFAULT_COMPILE_SECONDS)]
    pub policy_compile_seconds: u64,
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
        // Each of N replicas enforces 1/N of every limit (a burst of at least one).
        let share = f64::from(self.replicas.max(1));
        let rate = |per_second: f64, burst: u32| Rate {
            per_second: if per_second > 0.0 {
                per_second / share
            } else {
                0.0
            },
            burst: (burst / self.replicas.max(1)).max(1),
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

/// A sustained rate and a burst. A rate of zero turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, refilled continuously.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period (at least 1).
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        per_second: 0.0,
        burst: 0,
    };

    pub(crate) fn enabled(self) -> bool {
        self.per_second > 0.0
    }

    pub(crate) fn capacity(self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

/// The limits of each family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Verified exchanges per tenant.
    pub tenant: Rate,
    /// Verified exchanges per identity.
    pub identity: Rate,
    /// Exchanges that fail verification, per client address.
    pub client_failures: Rate,
}

impl RateLimits {
    /// Everything off.
    pub const OFF: RateLimits = RateLimits {
        tenant: Rate::OFF,
        identity: Rate::OFF,
        client_failures: Rate::OFF,
    };
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file `{path}` is not a YAML map of settings")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error(
        "config file `{path}`: unknown setting `{key}` (the settings are the flags of `tollgate serve --help`, in snake_case)"
    )]
    Unknown { path: PathBuf, key: String },
    #[error("config file `{path}`: setting `{key}` must be a string, number or boolean")]
    NotScalar { path: PathBuf, key: String },
    #[error("config file `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ServeArgs {
    /// The settings with the `--config` file as a layer under the flags and the environment
    /// and over the defaults. The file's keys are the flags' names in snake_case; there is no
    /// second list of settings to keep in step with the flags: each key is found among the
    /// flags' ids, and the whole set is parsed again by clap, flags and environment included,
    /// so a file value is checked exactly like the flag it stands for.
    pub fn with_file(self, matches: &clap::ArgMatches) -> Result<ServeArgs, ConfigError> {
        use clap::parser::ValueSource;
        use clap::{ArgAction, CommandFactory, FromArgMatches};
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file: std::collections::BTreeMap<String, serde_yaml_ng::Value> =
            serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source,
            })?;
        let command = ServeCommand::command();
        let mut argv: Vec<std::ffi::OsString> = vec!["serve".into()];
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let Some(long) = arg.get_long() else { continue };
            let flag = matches!(arg.get_action(), ArgAction::SetTrue);
            match matches.value_source(id) {
                // Given as a flag: it stays one, above the file.
                Some(ValueSource::CommandLine) if flag => argv.push(format!("--{long}").into()),
                Some(ValueSource::CommandLine) => {
                    for raw in matches.get_raw(id).into_iter().flatten() {
                        let mut given = std::ffi::OsString::from(format!("--{long}="));
                        given.push(raw);
                        argv.push(given);
                    }
                }
                // The environment is read again by the parse below, above the file.
                Some(ValueSource::EnvVariable) => {}
                _ => match file.get(id) {
                    None => {}
                    Some(serde_yaml_ng::Value::Bool(true)) if flag => {
                        argv.push(format!("--{long}").into());
                    }
                    Some(serde_yaml_ng::Value::Bool(false)) if flag => {}
                    Some(value) => {
                        let value = match value {
                            serde_yaml_ng::Value::String(s) => s.clone(),
                            serde_yaml_ng::Value::Number(n) => n.to_string(),
                            serde_yaml_ng::Value::Bool(b) => b.to_string(),
                            _ => {
                                return Err(ConfigError::NotScalar {
                                    path,
                                    key: id.to_owned(),
                                });
                            }
                        };
                        // `--name=value`, so that a negative number is not read as a flag.
                        argv.push(format!("--{long}={value}").into());
                    }
                },
            }
        }
        if let Some(key) = file.keys().find(|key| {
            key.as_str() == "config"
                || !command
                    .get_arguments()
                    .any(|arg| arg.get_id().as_str() == key.as_str())
        }) {
            return Err(ConfigError::Unknown {
                path,
                key: key.clone(),
            });
        }
        let layered = command
            .try_get_matches_from(argv)
            .and_then(|m| ServeCommand::from_arg_matches(&m))
            .map_err(|error| ConfigError::Invalid {
                path: path.clone(),
                message: error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_owned(),
            })?;
        Ok(layered.serve)
    }
}

/// `ServeArgs` as a command of its own, to parse the layered settings again.
#[derive(clap::Parser)]
#[command(name = "serve")]
struct ServeCommand {
    #[command(flatten)]
    serve: ServeArgs,
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
        try_parse(args).unwrap()
    }

    fn try_parse(args: &[&str]) -> Result<ServeArgs, ConfigError> {
        let matches = Wrapper::command().get_matches_from(args);
        let wrapper = Wrapper::from_arg_matches(&matches).unwrap();
        wrapper.serve.with_file(&matches)
    }

    #[test]
    fn the_default_url_is_where_the_server_listens_by_default() {
        let args = parse(&["tollgate"]);
        assert_eq!(args.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(args.public_url(), DEFAULT_URL);
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
            RateLimits {
                tenant: Rate {
                    per_second: 0.0,
                    burst: 400
                },
                identity: Rate {
                    per_second: 0.0,
                    burst: 200
                },
                client_failures: Rate {
                    per_second: 0.0,
                    burst: 1000
                },
            }
        );
        std::fs::write(&path, "listn: 127.0.0.1:1\n").unwrap();
        let error = try_parse(&["t", "--config", file]).unwrap_err().to_string();
        assert!(error.contains("unknown setting `listn`"), "{error}");
        std::fs::write(&path, "leeway_seconds: soon\n").unwrap();
        let error = try_parse(&["t", "--config", file]).unwrap_err().to_string();
        assert!(error.contains("soon"), "{error}");
        std::fs::write(&path, "max_connections: [1]\n").unwrap();
        let error = try_parse(&["t", "--config", file]).unwrap_err().to_string();
        assert!(error.contains("must be a string"), "{error}");
        std::fs::remove_file(&path).unwrap();
    }

    /// Every flag can be set from the file: a setting added to `ServeArgs` is in the file too,
    /// with no second list to forget it in.
    #[test]
    fn every_flag_is_a_file_setting() {
        let path =
            std::env::temp_dir().join(format!("tollgate-config-all-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "public_url: https://sts.example\ndatabase: sqlite://x.db\ndata_dir: /tmp/d\n\
             operator_key: k\nsigning_alg: EdDSA\nkey_rotation_seconds: 9\n\
             max_token_lifetime_seconds: 8\npolicy_fuel: 7\nmax_body_bytes: 6\n\
             request_timeout_seconds: 5\nmax_connections: 4\ntenant_burst: 3\n\
             identity_rate: 2.5\nidentity_burst: 2\nclient_failure_burst: 1\n",
        )
        .unwrap();
        let args = parse(&["t", "--config", path.to_str().unwrap()]);
        assert_eq!(args.public_url.as_deref(), Some("https://sts.example"));
        assert_eq!(args.database.as_deref(), Some("sqlite://x.db"));
        assert_eq!(args.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(args.operator_key.as_deref(), Some("k"));
        assert_eq!(args.signing_alg, Algorithm::EdDsa);
        assert_eq!(
            (args.key_rotation_seconds, args.max_token_lifetime_seconds),
            (9, 8)
        );
        assert_eq!((args.policy_fuel, args.max_body_bytes), (7, 6));
        assert_eq!((args.request_timeout_seconds, args.max_connections), (5, 4));
        assert_eq!((args.tenant_burst, args.identity_burst), (3, 2));
        assert_eq!(args.identity_rate, 2.5);
        assert_eq!(args.client_failure_burst, 1);
        std::fs::remove_file(&path).unwrap();
    }
}
