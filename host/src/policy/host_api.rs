//! The `tollgate:policy/host` interface: logging and glob matching.
//!
//! Defined with `func_wrap` and `WasmStr` rather than through the generated `Host` trait: the
//! strings are read in place from guest memory, so a `glob-match` call allocates nothing on
//! the host (a policy may call it a dozen times per decision).

use super::bindings::tollgate::policy::host::Level;
use super::sandbox::SandboxState;
use wasmtime::component::{Linker, WasmStr};
use wasmtime::{Result, StoreContextMut};

/// The host interface's instance name.
const HOST: &str = "tollgate:policy/host@0.1.0";
/// The types interface: no functions, but the world imports it.
const TYPES: &str = "tollgate:policy/types@0.1.0";

/// Adds `tollgate:policy/{host,types}` to `linker`.
pub fn add_to_linker(linker: &mut Linker<SandboxState>) -> Result<()> {
    linker.instance(TYPES)?;
    let mut host = linker.instance(HOST)?;
    host.func_wrap(
        "glob-match",
        |cx: StoreContextMut<'_, SandboxState>, (pattern, text): (WasmStr, WasmStr)| {
            let pattern = pattern.to_str(&cx)?;
            let text = text.to_str(&cx)?;
            Ok((cx.data().globs.is_match(&pattern, &text),))
        },
    )?;
    host.func_wrap(
        "log",
        |mut cx: StoreContextMut<'_, SandboxState>, (level, message): (Level, WasmStr)| {
            let stream = match level {
                Level::Debug => "debug",
                Level::Info => "info",
                Level::Warn => "warn",
            };
            let message = message.to_str(&cx)?.into_owned();
            cx.data_mut().log(stream, &message);
            Ok(())
        },
    )?;
    Ok(())
}
