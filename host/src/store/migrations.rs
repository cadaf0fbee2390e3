//! The schema, embedded in the binary: one list of migrations per backend, moving in step.
//!
//! Listed by hand with `include_str!` rather than `sqlx::migrate!`, whose directory scan a build
//! does not repeat when a file is added: a new migration is a new line here, so it is compiled in.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::Backend;

/// `(version, description, SQL)`: what `sqlx migrate` would read from `NNNN_description.sql`.
type Embedded = &'static [(i64, &'static str, &'static str)];

const SQLITE: Embedded = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "token life",
        include_str!("../../migrations/sqlite/0002_token_life.sql"),
    ),
    (
        3,
        "replicas",
        include_str!("../../migrations/sqlite/0003_replicas.sql"),
    ),
    (
        4,
        "policy change",
        include_str!("../../migrations/sqlite/0004_policy_change.sql"),
    ),
];

const POSTGRES: Embedded = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "token life",
        include_str!("../../migrations/postgres/0002_token_life.sql"),
    ),
    (
        3,
        "replicas",
        include_str!("../../migrations/postgres/0003_replicas.sql"),
    ),
    (
        4,
        "policy change",
        include_str!("../../migrations/postgres/0004_policy_change.sql"),
    ),
];

#[derive(Debug)]
struct Source(Embedded);

impl<'s> MigrationSource<'s> for Source {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// The migrator for `backend`'s schema.
pub(super) async fn migrator(backend: Backend) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::{POSTGRES, SQLITE};

    #[test]
    fn backends_have_the_same_migrations() {
        let versions =
            |list: super::Embedded| -> Vec<_> { list.iter().map(|&(v, d, _)| (v, d)).collect() };
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }
}
