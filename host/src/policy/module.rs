//! Loading a policy module: validate, compile (with a deadline), check imports, cache artifacts.

use super::bindings::TrustPolicyPre;
use super::prepare::Preparer;
use super::sandbox::SandboxState;
use super::wasi::ALLOWED_INTERFACES;
use serde::Serialize;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The host interface every policy may import.
pub const HOST_INTERFACE: &str = "tollgate:policy/host";
/// The world a policy must implement.
pub const WORLD: &str = "tollgate:policy/trust-policy@0.1.0";
/// The functions the world exports.
pub const EXPORTS: &[&str] = &["evaluate", "validate-config"];

/// Why a module was not accepted. Messages are meant for the tenant who uploaded it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("module is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "this is a core WebAssembly module, not a component: build the policy for \
         `wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("not a WebAssembly component: {0}")]
    Malformed(String),
    #[error("compilation did not finish within its {0:?} deadline")]
    CompileDeadline(Duration),
    #[error(
        "the server is still compiling {MAX_COMPILATIONS} modules (abandoned ones past their \
         deadline included): try again later"
    )]
    Busy,
    #[error("module does not compile: {0}")]
    Compile(String),
    #[error(
        "module imports `{}`, which policies may not use: a policy may import only \
         `tollgate:policy/host` and the minimal WASI set (cli environment/exit/stdio, io, random, clocks)",
        imports.join("`, `")
    )]
    ForbiddenImport {
        /// Every forbidden import, so the tenant sees all of them at once (a guest reaching for
        /// sockets usually drags in the filesystem as well).
        imports: Vec<String>,
    },
    #[error("module imports something the sandbox does not provide: {0}")]
    Link(String),
    #[error("module does not implement the `{WORLD}` world: {0}")]
    WrongWorld(String),
    #[error("artifact cache: {0}")]
    Cache(std::io::Error),
}

impl From<std::io::Error> for LoadError {
    fn from(error: std::io::Error) -> Self {
        Self::Cache(error)
    }
}

/// What `tollgate policy check` reports about a module.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleInfo {
    /// `sha256:` followed by the hex digest of the module's bytes.
    pub digest: String,
    pub size: usize,
    pub world: &'static str,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// Time spent compiling (zero when the artifact came from the cache); in JSON
    /// `compile_time_us`, microseconds.
    #[serde(rename = "compile_time_us", serialize_with = "super::outcome::micros")]
    pub compile_time: Duration,
    /// Whether the precompiled artifact was read from the cache.
    pub cached: bool,
}

/// A loaded, ready-to-instantiate policy.
#[derive(Clone)]
pub struct PolicyModule {
    pub(super) pre: TrustPolicyPre<SandboxState>,
    pub info: ModuleInfo,
    /// How the module's configs are prepared (`builtin:cel`'s); `None`: handed as written.
    pub(super) preparer: Option<Arc<Preparer>>,
}

impl PolicyModule {
    /// This module, handed its configs as `preparer` prepares them.
    pub fn with_preparer(mut self, preparer: Preparer) -> Self {
        self.preparer = Some(Arc::new(preparer));
        self
    }

    /// The config to hand this module at a decision for an identity's `written` config (the
    /// one it validated): prepared for a module that prepares its configs, else as written.
    pub fn config<'a>(&self, written: &'a str) -> Cow<'a, str> {
        match &self.preparer {
            Some(preparer) => preparer.config(written),
            None => Cow::Borrowed(written),
        }
    }
}

pub use crate::common::digest;

/// Checks the 8-byte preamble: components and core modules share the magic, not the layer.
pub fn check_preamble(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE: [u8; 4] = [1, 0, 0, 0];
    const COMPONENT: [u8; 4] = [0x0d, 0, 1, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::Malformed("missing the `\\0asm` preamble".into()));
    }
    match <[u8; 4]>::try_from(&bytes[4..8]).expect("four bytes") {
        COMPONENT => Ok(()),
        CORE => Err(LoadError::CoreModule),
        other => Err(LoadError::Malformed(format!(
            "unknown version/layer {other:?}"
        ))),
    }
}

/// Compilations one engine runs at once. A compilation past its deadline cannot be stopped and
/// keeps its thread busy until it ends: without this bound, repeated compile bombs would pile
/// up threads that eat every core.
pub const MAX_COMPILATIONS: usize = 2;

/// A reserved compilation slot, released when the compiling thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Compiles on another thread so a compile bomb cannot hold the caller past the deadline;
/// `running` counts this engine's compiling threads (see [`MAX_COMPILATIONS`]).
pub fn compile(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    deadline: Duration,
    running: &Arc<AtomicUsize>,
) -> Result<Component, LoadError> {
    running
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_COMPILATIONS).then_some(n + 1)
        })
        .map_err(|_| LoadError::Busy)?;
    let slot = Slot(running.clone());
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let engine = engine.clone();
    let bytes = bytes.to_vec();
    std::thread::Builder::new()
        .name("policy-compile".into())
        .spawn(move || {
            let _slot = slot;
            let _ = tx.send(Component::new(&engine, &bytes).map_err(|e| format!("{e:#}")));
        })?;
    match rx.recv_timeout(deadline) {
        Ok(result) => result.map_err(LoadError::Compile),
        Err(_) => Err(LoadError::CompileDeadline(deadline)),
    }
}

/// Lists imports and exports, rejecting any import outside the allowed set by name.
pub fn inspect(
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<(Vec<String>, Vec<String>), LoadError> {
    let ty = component.component_type();
    let mut imports = Vec::new();
    let mut forbidden = Vec::new();
    for (name, item) in ty.imports(engine) {
        let unversioned = name.split('@').next().unwrap_or(name);
        let allowed = unversioned == HOST_INTERFACE
            || unversioned == "tollgate:policy/types"
            || ALLOWED_INTERFACES.contains(&unversioned);
        if !allowed || !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            forbidden.push(name.to_owned());
        } else {
            imports.push(name.to_owned());
        }
    }
    if !forbidden.is_empty() {
        return Err(LoadError::ForbiddenImport { imports: forbidden });
    }
    let exports = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    Ok((imports, exports))
}

/// Precompiled artifacts on disk, keyed by module digest and engine compatibility.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    compat: String,
}

impl ArtifactCache {
    pub fn new(dir: &Path, engine: &wasmtime::Engine) -> std::io::Result<Self> {
        use std::hash::{Hash, Hasher};
        std::fs::create_dir_all(dir)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            compat: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.join(format!("{hex}-{}.cwasm", self.compat))
    }

    /// Maps an artifact this server wrote earlier for the same module and engine settings.
    ///
    /// Mapped, not read: code pages are file-backed, so a thousand modules cost resident
    /// memory only for the code their decisions run, and the kernel may drop idle pages.
    /// Artifacts are only ever replaced by rename (`put`), which leaves a live mapping on the
    /// old file; changing a file in place would corrupt or fault (SIGBUS) a live module, but
    /// whoever can write this directory can already plant code that the server will load, so
    /// mapping adds no one to the trusted (SECURITY.md).
    pub fn get(&self, engine: &wasmtime::Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file name carries the module's digest and this engine's compatibility
        // hash, only `put` below (this server) writes files in this directory and never in
        // place; wasmtime still checks the header and engine compatibility of what it maps.
        #[expect(
            unsafe_code,
            reason = "maps only artifacts this server serialized itself"
        )]
        let component = unsafe { Component::deserialize_file(engine, &path) };
        match component {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "discarding unreadable artifact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes an artifact atomically (temporary file, then rename).
    pub fn put(&self, digest: &str, component: &Component) -> Result<(), LoadError> {
        let bytes = component
            .serialize()
            .map_err(|e| LoadError::Compile(format!("serialize: {e:#}")))?;
        let path = self.path(digest);
        // Unique per write: two uploads of the same module may race to the same artifact.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}
