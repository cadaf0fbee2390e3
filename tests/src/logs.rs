//! What an in-process server logs, kept per server as a process's stderr would be.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A `tracing` dispatcher writing `info` and above, as `TOLLGATE_LOG=info` does, into `buffer`.
pub fn dispatch(buffer: Arc<Mutex<String>>) -> tracing::Dispatch {
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(move || Sink(buffer.clone()))
        .finish();
    tracing::Dispatch::new(subscriber)
}

struct Sink(Arc<Mutex<String>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap()
            .push_str(&String::from_utf8_lossy(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
