//! The `tollgate:policy/host` interface: logging and glob matching.

use super::bindings::tollgate::policy::host::{Host, Level};
use super::sandbox::SandboxState;

impl Host for SandboxState {
    fn log(&mut self, level: Level, message: String) {
        let stream = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
        };
        SandboxState::log(self, stream, &message);
    }

    fn glob_match(&mut self, pattern: String, text: String) -> bool {
        self.globs.is_match(&pattern, &text)
    }
}
