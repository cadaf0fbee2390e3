//! Leaf helpers every layer may use; this module imports nothing of the crate: the clock, random
//! ids, content digests, address ranges (`cidrs.rs`) and the shutdown signal.

pub mod cidrs;

use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A random 128-bit identifier, hex.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system random generator");
    hex::encode(bytes)
}

/// Whether this event falls in a sample of `share` (0 to 1) of all events: always at 1 or
/// more, never at 0 or less.
pub fn sampled(share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    if share <= 0.0 || share.is_nan() {
        return false;
    }
    let mut bytes = [0u8; 4];
    aws_lc_rs::rand::fill(&mut bytes).expect("system random generator");
    f64::from(u32::from_le_bytes(bytes)) < share * f64::from(u32::MAX)
}

/// `sha256:<hex>` of `bytes`: the address of a policy module in the store and the artifact
/// cache.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Completes on Ctrl-C or, on Unix, SIGTERM. On Unix the handlers are installed by this call,
/// not when the future is first polled: call it before announcing that the process listens,
/// or a signal sent right after the announcement kills the process instead of stopping it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
