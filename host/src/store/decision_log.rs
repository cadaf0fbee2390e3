//! Group commit for the audit log. Every exchange appends a decision record, and the answer
//! waits until the record is committed; one `INSERT` per exchange made each exchange pay a
//! commit and two hand-offs to sqlx's SQLite worker thread. Records that arrive while a
//! batch is being written go into the next one, written as one multi-row `INSERT`: under
//! load the commits are shared, alone an exchange waits no longer than before.
//!
//! On a SQLite file the writer commits through a connection of its own
//! ([`Store::writer_connection`]), not the pool: the pool's acquire, and sqlx's ping of every
//! connection handed back, were two more round trips to the connection's thread per batch. The
//! parts bench measured the record's commit at 0.78x the CPU (docs/benchmarks-history.md).

use super::{DecisionRecord, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most records in one `INSERT` (19 parameters each: 1,216, far under both databases' limits).
pub const MAX_BATCH: usize = 64;

/// Records waiting for the writer before appenders wait for room.
const QUEUE: usize = 4096;

/// The batch's outcome: whether the database was unreachable, and the error's text.
type Reply = oneshot::Sender<Result<(), (bool, String)>>;

/// The handle exchanges append through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DecisionLog {
    queue: mpsc::Sender<(DecisionRecord, Reply)>,
}

impl DecisionLog {
    /// Starts the writer task for `store` (on the current Tokio runtime).
    pub fn start(store: Store) -> DecisionLog {
        let (queue, records) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, records));
        DecisionLog { queue }
    }

    /// Appends `record`; returns once it is committed.
    pub async fn append(&self, record: DecisionRecord) -> Result<(), StoreError> {
        let (reply, committed) = oneshot::channel();
        let stopped = || StoreError::Invalid("the decision log is stopped".into());
        self.queue
            .send((record, reply))
            .await
            .map_err(|_| stopped())?;
        committed
            .await
            .map_err(|_| stopped())?
            .map_err(|(unavailable, error)| {
                if unavailable {
                    StoreError::Unavailable(error)
                } else {
                    StoreError::Invalid(error)
                }
            })
    }
}

async fn write(store: Store, mut records: mpsc::Receiver<(DecisionRecord, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // A SQLite file's records go through a connection of the writer's own (opened again after
    // a failed batch); a closed store's through the pool, which refuses them.
    let mut own = store.writer_connection().await;
    while records.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Exchanges that are about to append get one turn to do so: a bigger batch is one
        // commit and one hand-off to the database's thread for more records.
        if batch.len() < MAX_BATCH {
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match records.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
        }
        let (rows, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        if store.is_closed() {
            own = None;
        }
        let result = store
            .append_decisions_on(own.as_mut(), &rows)
            .await
            .map_err(|e| (e.is_unavailable(), e.to_string()));
        if result.is_err() && own.is_some() && !store.is_closed() {
            own = store.writer_connection().await;
        }
        for reply in replies {
            // The exchange may have given up waiting; its record is written all the same.
            let _ = reply.send(result.clone());
        }
    }
}
