//! Functions the host offers to policies.
//!
//! Inside the sandbox these call the Tollgate host. Compiled natively (for `cargo test`), they run
//! the same logic in-process so a policy's unit tests behave as it does in the server.

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail for the policy author.
    Debug,
    /// Normal operation.
    Info,
    /// Something the tenant should look at.
    Warn,
}

/// Appends a line to the decision log. The host bounds how much a decision may log.
pub fn log(level: Level, message: &str) {
    imp::log(level, message);
}

/// Whether `text` matches the glob `pattern` (see [`crate::glob`] for the dialect).
///
/// The host compiles each pattern once and caches it, so calling this in a loop is cheap.
/// An invalid pattern matches nothing; reject it earlier in `validate_config` with
/// [`crate::glob::validate`]. [`crate::glob::matches`] gives the same answers without leaving
/// the policy, which is cheaper for the short patterns of trust rules.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    imp::glob_match(pattern, text)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::tollgate::policy::host as wit;

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
        };
        wit::log(level, message);
    }

    pub fn glob_match(pattern: &str, text: &str) -> bool {
        wit::glob_match(pattern, text)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;
    use alloc::borrow::ToOwned;
    use alloc::string::String;
    use std::cell::RefCell;
    use std::collections::HashMap;

    std::thread_local! {
        static CACHE: RefCell<HashMap<String, Option<regex::Regex>>> = RefCell::new(HashMap::new());
    }

    pub fn log(level: Level, message: &str) {
        std::eprintln!("[policy {level:?}] {message}");
    }

    pub fn glob_match(pattern: &str, text: &str) -> bool {
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let compiled = cache.entry(pattern.to_owned()).or_insert_with(|| {
                let source = crate::glob::to_regex(pattern).ok()?;
                regex::Regex::new(&source).ok()
            });
            compiled.as_ref().is_some_and(|re| re.is_match(text))
        })
    }
}
