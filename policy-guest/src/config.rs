//! Parsing an identity's policy config with clear errors.

use alloc::format;
use alloc::string::String;
use core::fmt;
use serde::de::DeserializeOwned;

/// Why a config could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    /// A config error with a message, for checks beyond what `serde` does.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for ConfigError {}

impl From<ConfigError> for String {
    fn from(error: ConfigError) -> Self {
        error.0
    }
}

/// Parses a JSON config into `C`. An empty string is read as `{}`.
///
/// Put `#[serde(deny_unknown_fields)]` on your config type so a misspelt key is an error
/// rather than a silently ignored rule.
pub fn parse<C: DeserializeOwned>(json: &str) -> Result<C, ConfigError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| ConfigError(format!("invalid config: {e}")))
}
