//! Record classes (the catalogue) at the storage boundary.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::codec::{Tx, from_json, json, limit, micros, text_after, time};
use super::{After, StoreError};
use crate::domain::{FieldSpec, RecordClass, RecordClassId};

fn record_class_from(row: &AnyRow) -> Result<RecordClass, StoreError> {
    let id: String = row.try_get("id")?;
    let fields: Vec<FieldSpec> = from_json(&row.try_get::<String, _>("fields")?)?;
    Ok(RecordClass {
        id: RecordClassId::parse(&id)
            .map_err(|e| StoreError::Corrupt(format!("record class {id:?}: {e}")))?,
        display_name: row.try_get("display_name")?,
        description: row.try_get("description")?,
        fields,
        create_time: time(row.try_get("create_time")?)?,
    })
}

pub(super) async fn record_class(
    db: &AnyPool,
    id: &RecordClassId,
) -> Result<Option<RecordClass>, StoreError> {
    let row = sqlx::query("SELECT * FROM record_classes WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(record_class_from).transpose()
}

pub(super) async fn record_classes(
    db: &AnyPool,
    after: After<String>,
    n: u32,
) -> Result<Vec<RecordClass>, StoreError> {
    let rows = sqlx::query("SELECT * FROM record_classes WHERE id > $1 ORDER BY id LIMIT $2")
        .bind(text_after(after))
        .bind(limit(n))
        .fetch_all(db)
        .await?;
    rows.iter().map(record_class_from).collect()
}

/// Adds `c`, unless its id is taken.
pub(super) async fn insert(tx: &mut Tx, c: &RecordClass) -> Result<(), StoreError> {
    let exists = sqlx::query("SELECT 1 FROM record_classes WHERE id = $1")
        .bind(c.id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_some() {
        return Err(StoreError::AlreadyExists(format!(
            "record class {} already exists",
            c.id.resource_name()
        )));
    }
    sqlx::query(
        "INSERT INTO record_classes (id, display_name, description, fields, create_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(c.id.as_str())
    .bind(c.display_name.as_str())
    .bind(c.description.as_str())
    .bind(json(&c.fields)?)
    .bind(micros(c.create_time))
    .execute(&mut *tx)
    .await?;
    Ok(())
}
