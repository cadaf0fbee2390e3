//! The dev issuer's state directory: its RS256 keys (`keys.json`) and the URL of the last
//! issuer started on it (`issuer.json`), shared by the `dev issuer`, `dev token` and
//! `dev rotate` processes. Unless told otherwise they all use one directory per user
//! ([`default_dir`]), so a shell in any directory mints with the keys the running issuer serves.

use super::DevError;
use crate::issue::{Algorithm, KeyRing, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Kubernetes signs ServiceAccount tokens with RS256; so does the dev issuer.
const ALGORITHM: Algorithm = Algorithm::Rs256;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    kid: String,
    alg: Algorithm,
    created_at: i64,
    /// PKCS#8 DER, standard base64.
    pkcs8: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerFile {
    issuer: String,
}

/// The per-user state directory, whatever the current directory: `$XDG_STATE_HOME/tollgate/dev`,
/// else `$HOME/.local/state/tollgate/dev` (a relative `XDG_STATE_HOME` is ignored, as the XDG
/// base directory specification says). `var` reads the environment; `None` when neither is set.
pub fn default_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let absolute = |name: &str| {
        var(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/state")))
        .map(|state| state.join("tollgate/dev"))
}

/// A dev issuer state directory.
#[derive(Debug, Clone)]
pub struct DevState {
    dir: PathBuf,
}

impl DevState {
    /// The state kept in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> DevState {
        DevState { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn keys_path(&self) -> PathBuf {
        self.dir.join("keys.json")
    }

    fn issuer_path(&self) -> PathBuf {
        self.dir.join("issuer.json")
    }

    /// The keys, current first; `None` when no key was created yet.
    pub fn load(&self) -> Result<Option<KeyRing>, DevError> {
        let path = self.keys_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => return Err(DevError::Io { path, cause }),
        };
        let corrupt = |reason: String| DevError::Corrupt {
            path: path.clone(),
            reason,
        };
        let file: KeysFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let keys = file
            .keys
            .iter()
            .map(|stored| {
                let der = STANDARD
                    .decode(&stored.pkcs8)
                    .map_err(|e| corrupt(format!("key `{}`: {e}", stored.kid)))?;
                SigningKey::from_parts(&stored.kid, stored.alg, &der, stored.created_at)
                    .map_err(|e| corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(corrupt("no keys".into()));
        }
        Ok(Some(KeyRing::new(keys)))
    }

    /// The keys, or [`DevError::NoKeys`] when no issuer created any here yet: for `dev token`,
    /// which must sign with the keys a running issuer serves, never with keys of its own.
    pub fn existing(&self) -> Result<KeyRing, DevError> {
        self.load()?.ok_or_else(|| DevError::NoKeys {
            dir: self.dir.clone(),
        })
    }

    /// The keys, generating the first one when the directory has none. When two processes
    /// start on a fresh directory at once, both end up with the key that was written first.
    pub fn load_or_create(&self, now: i64) -> Result<KeyRing, DevError> {
        if let Some(ring) = self.load()? {
            return Ok(ring);
        }
        let ring = KeyRing::new(vec![SigningKey::generate(ALGORITHM, now)?]);
        self.write_keys(&ring, false)?;
        self.load()?.ok_or_else(|| DevError::Corrupt {
            path: self.keys_path(),
            reason: "vanished after it was written".into(),
        })
    }

    /// Adds a new key and makes it current, keeping `keep_previous` older keys published.
    pub fn rotate(&self, now: i64, keep_previous: usize) -> Result<KeyRing, DevError> {
        let mut ring = self.load_or_create(now)?;
        // A key created in the same second as the current one must still become current
        // when the ring is reloaded, which orders by creation time.
        let created_at = now.max(ring.current().created_at() + 1);
        ring.rotate(SigningKey::generate(ALGORITHM, created_at)?, keep_previous);
        self.write_keys(&ring, true)?;
        Ok(ring)
    }

    /// Records the URL of the issuer serving this directory, the default `iss` of `dev token`.
    pub fn record_issuer(&self, issuer: &str) -> Result<(), DevError> {
        let json = serde_json::to_vec_pretty(&IssuerFile {
            issuer: issuer.to_owned(),
        })
        .map_err(|e| DevError::Corrupt {
            path: self.issuer_path(),
            reason: e.to_string(),
        })?;
        self.write_file(&self.issuer_path(), &json, true)
    }

    /// The URL recorded by the last `dev issuer` started on this directory.
    pub fn recorded_issuer(&self) -> Result<Option<String>, DevError> {
        let path = self.issuer_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<IssuerFile>(&bytes)
                .map(|file| Some(file.issuer))
                .map_err(|e| DevError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(cause) => Err(DevError::Io { path, cause }),
        }
    }

    fn write_keys(&self, ring: &KeyRing, replace: bool) -> Result<(), DevError> {
        let file = KeysFile {
            keys: ring
                .keys()
                .iter()
                .map(|key| StoredKey {
                    kid: key.kid().to_owned(),
                    alg: key.alg(),
                    created_at: key.created_at(),
                    pkcs8: STANDARD.encode(key.pkcs8_der()),
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| DevError::Corrupt {
            path: self.keys_path(),
            reason: e.to_string(),
        })?;
        self.write_file(&self.keys_path(), &json, replace)
    }

    /// Writes through a private temporary file so readers never see half a file; with
    /// `replace` false an existing file wins (a hard link does not overwrite).
    fn write_file(&self, path: &Path, contents: &[u8], replace: bool) -> Result<(), DevError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |cause| DevError::Io { path, cause }
        };
        create_private_dir(&self.dir).map_err(io(&self.dir))?;
        let temp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
            std::process::id()
        ));
        let mut file = private_file(&temp).map_err(io(&temp))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(io(&temp))?;
        drop(file);
        let result = if replace {
            std::fs::rename(&temp, path)
        } else {
            match std::fs::hard_link(&temp, path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        };
        let _ = std::fs::remove_file(&temp);
        result.map_err(io(path))
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// The keys file holds private keys: readable by its owner only.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_state(name: &str) -> DevState {
        let dir =
            std::env::temp_dir().join(format!("tollgate-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DevState::new(dir)
    }

    #[test]
    fn keys_are_created_once_and_reloaded_identically() {
        let state = temp_state("create");
        assert!(state.load().unwrap().is_none());
        let created = state.load_or_create(100).unwrap();
        assert_eq!(created.current().alg(), Algorithm::Rs256);
        let reloaded = state.load_or_create(200).unwrap();
        assert_eq!(reloaded.jwks(), created.jwks());
        assert_eq!(reloaded.current().created_at(), 100);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(state.keys_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private keys readable by others: {mode:o}");
        }
        let _ = std::fs::remove_dir_all(state.dir());
    }

    #[test]
    fn rotation_in_the_same_second_still_makes_the_new_key_current() {
        let state = temp_state("rotate");
        let first = state.load_or_create(100).unwrap();
        let rotated = state.rotate(100, 1).unwrap();
        let reloaded = state.load().unwrap().unwrap();
        assert_eq!(reloaded.current().kid(), rotated.current().kid());
        assert_ne!(reloaded.current().kid(), first.current().kid());
        assert_eq!(reloaded.previous()[0].kid(), first.current().kid());
        let _ = std::fs::remove_dir_all(state.dir());
    }

    #[test]
    fn a_corrupt_or_tampered_keys_file_is_an_error() {
        let state = temp_state("corrupt");
        let ring = state.load_or_create(100).unwrap();
        let path = state.keys_path();
        let original = std::fs::read_to_string(&path).unwrap();

        std::fs::write(&path, "{").unwrap();
        assert!(matches!(state.load(), Err(DevError::Corrupt { .. })));
        std::fs::write(&path, r#"{"keys": []}"#).unwrap();
        assert!(matches!(state.load(), Err(DevError::Corrupt { .. })));
        // A kid that is not the key's thumbprint would publish a key under a false name.
        let swapped = original.replace(ring.current().kid(), "forged-kid");
        std::fs::write(&path, swapped).unwrap();
        let error = state.load().unwrap_err().to_string();
        assert!(error.contains("forged-kid"), "{error}");
        let _ = std::fs::remove_dir_all(state.dir());
    }

    #[test]
    fn the_default_dir_is_per_user_and_never_relative() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        let dir = |vars| default_dir(env(vars));
        assert_eq!(
            dir(&[("XDG_STATE_HOME", "/x/state"), ("HOME", "/home/u")]),
            Some(PathBuf::from("/x/state/tollgate/dev"))
        );
        assert_eq!(
            dir(&[("HOME", "/home/u")]),
            Some(PathBuf::from("/home/u/.local/state/tollgate/dev"))
        );
        // A relative XDG_STATE_HOME or HOME would follow the current directory again.
        assert_eq!(
            dir(&[("XDG_STATE_HOME", "state"), ("HOME", "/home/u")]),
            Some(PathBuf::from("/home/u/.local/state/tollgate/dev"))
        );
        assert_eq!(dir(&[("XDG_STATE_HOME", ""), ("HOME", "")]), None);
        assert_eq!(dir(&[]), None);
    }

    #[test]
    fn existing_keys_are_never_created() {
        let state = temp_state("existing");
        let error = state.existing().unwrap_err();
        assert!(matches!(error, DevError::NoKeys { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.contains("tollgate dev issuer") && message.contains("--state-dir"),
            "{message}"
        );
        assert!(!state.dir().exists(), "nothing is written");
        let created = state.load_or_create(100).unwrap();
        assert_eq!(state.existing().unwrap().jwks(), created.jwks());
        let _ = std::fs::remove_dir_all(state.dir());
    }

    #[test]
    fn the_issuer_url_is_recorded() {
        let state = temp_state("issuer");
        assert_eq!(state.recorded_issuer().unwrap(), None);
        state.record_issuer("http://127.0.0.1:1234").unwrap();
        assert_eq!(
            state.recorded_issuer().unwrap().as_deref(),
            Some("http://127.0.0.1:1234")
        );
        let _ = std::fs::remove_dir_all(state.dir());
    }
}
