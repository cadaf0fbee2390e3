//! Changes other servers on the same PostgreSQL database make, announced at once: every write
//! of an identity or issuer is followed by a `NOTIFY`, and every server `LISTEN`s, dropping
//! what it cached of that record, so another replica's change shows in milliseconds. The read
//! cache's one-second expiry stays as the backstop for notifications lost while a listener
//! reconnects (it then forgets everything it cached, too). SQLite has one server: nothing to
//! announce.

use super::{Backend, Store, StoreError};
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc;

/// The channel the servers of one database talk on.
const CHANNEL: &str = "tollgate_changes";

/// A record another server (or this one) changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Identity {
        tenant: String,
        id: String,
    },
    Issuer {
        tenant: String,
        name: String,
    },
    /// Notifications may have been lost (the listener reconnected): assume anything changed.
    Unknown,
}

impl Change {
    fn payload(&self) -> String {
        match self {
            Change::Identity { tenant, id } => format!("identity {tenant} {id}"),
            Change::Issuer { tenant, name } => format!("issuer {tenant} {name}"),
            Change::Unknown => "unknown".to_owned(),
        }
    }

    fn parse(payload: &str) -> Change {
        let mut words = payload.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("identity"), Some(tenant), Some(id)) => Change::Identity {
                tenant: tenant.into(),
                id: id.into(),
            },
            (Some("issuer"), Some(tenant), Some(name)) => Change::Issuer {
                tenant: tenant.into(),
                name: name.into(),
            },
            _ => Change::Unknown,
        }
    }
}

impl Store {
    /// Tells every server on this database that `change` happened (PostgreSQL only). A
    /// failure is logged, not returned: the write itself is committed, and the others' cache
    /// expiry catches up within a second.
    pub(super) async fn announce(&self, change: Change) {
        if self.backend != Backend::Postgres {
            return;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change.payload())
            .execute(&self.pool)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "could not announce a change to the other servers");
        }
    }

    /// Follows the changes every server announces (PostgreSQL only; `None` on SQLite): each
    /// drops this server's cached copy of the record, then is passed on to the receiver (for
    /// caches above the store, such as issuers' keys).
    pub fn follow_changes(&self) -> Option<mpsc::Receiver<Change>> {
        let url = self.url.clone()?;
        let (sender, receiver) = mpsc::channel(1024);
        let store = self.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(250);
            loop {
                match listen(&url).await {
                    Ok(mut listener) => {
                        delay = Duration::from_millis(250);
                        // Whatever happened while nobody listened.
                        store.apply(Change::Unknown, &sender).await;
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(note)) => {
                                    store.apply(Change::parse(note.payload()), &sender).await
                                }
                                Ok(None) => {
                                    store.apply(Change::Unknown, &sender).await;
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "lost the change listener");
                                    break;
                                }
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?delay, "cannot listen for changes")
                    }
                }
                if sender.is_closed() {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
        Some(receiver)
    }

    async fn apply(&self, change: Change, sender: &mpsc::Sender<Change>) {
        match &change {
            Change::Identity { tenant, id } => self.cache.identity_deleted(tenant, id),
            Change::Issuer { tenant, name } => self.cache.issuer_written(tenant, name),
            Change::Unknown => self.cache.clear(),
        }
        let _ = sender.send(change).await;
    }
}

async fn listen(url: &str) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn payloads_round_trip_and_garbage_means_unknown() {
        for change in [
            Change::Identity {
                tenant: "acme".into(),
                id: "ci".into(),
            },
            Change::Issuer {
                tenant: "acme".into(),
                name: "dev".into(),
            },
        ] {
            assert_eq!(Change::parse(&change.payload()), change);
        }
        assert_eq!(Change::parse("identity acme"), Change::Unknown);
        assert_eq!(Change::parse(""), Change::Unknown);
    }
}
