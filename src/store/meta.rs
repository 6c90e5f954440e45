//! Service metadata: a few named values (what has been set up once).

use sqlx::AnyPool;

use super::StoreError;
use super::codec::Tx;

pub(super) async fn meta(db: &AnyPool, key: &str) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_optional(db)
        .await?)
}

/// Sets `key` to `value`.
pub(super) async fn set(tx: &mut Tx, key: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
