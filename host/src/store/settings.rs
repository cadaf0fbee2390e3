//! What every server on one database must agree on, recorded by the first to start.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// Records `value` for `name` unless a value is recorded already; the recorded value.
    pub async fn claim_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        self.setting(name)
            .await?
            .ok_or_else(|| StoreError::corrupt("server_settings", format!("`{name}` vanished")))
    }

    /// The value recorded for `name`.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM server_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("value")).transpose()?)
    }
}
