//! What can go wrong in the store.

use thiserror::Error;

/// An error from [`Store`](super::Store).
#[derive(Debug, Error)]
pub enum StoreError {
    /// The record to create exists already, or the one to delete is still referenced.
    #[error("{0}")]
    Conflict(String),
    /// A record the operation names or refers to does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller passed something the store refuses to keep.
    #[error("{0}")]
    Invalid(String),
    /// The database URL names no supported backend. Only the scheme is kept: URLs carry passwords.
    #[error("unsupported database url scheme `{0}` (use `sqlite:` or `postgres:`)")]
    UnsupportedUrl(String),
    /// The directory for a SQLite file could not be created.
    #[error("cannot create the database directory `{path}`: {cause}")]
    CreateDir {
        /// The directory.
        path: String,
        /// Why (in the message, so not also a `source()`: printed once).
        cause: std::io::Error,
    },
    /// A stored value no longer decodes (hand-edited or written by a newer version).
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// Which table and column.
        what: &'static str,
        /// The decoding error.
        reason: String,
    },
    /// The system random number generator failed.
    #[error("the random number generator failed")]
    Random,
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database could not be reached (reported by the decision log's writer).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, every connection busy
    /// past the acquire timeout), as opposed to refusing the operation: worth retrying later.
    pub fn is_unavailable(&self) -> bool {
        let error = match self {
            Self::Unavailable(_) => return true,
            Self::Database(error) => error,
            Self::Migrate(sqlx::migrate::MigrateError::Execute(error)) => error,
            _ => return false,
        };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => true,
            // The server shutting down or starting (admin shutdown, cannot connect now).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("57P") || code == "08006" || code == "08001"),
            _ => false,
        }
    }
}

// By hand rather than `#[from]`, which would also make the cause the `source()` of an error
// whose message already holds it, and a chain printer would say it twice.
impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl StoreError {
    pub(super) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}

/// Whether `error` is the database refusing a row whose foreign key names nothing, or the
/// deletion of a row still named by another.
pub(super) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}

/// Whether `error` is a unique or primary key violation.
pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}
