//! The catalogue of record classes.

use std::sync::Arc;

use serde::Deserialize;

use super::{Audited, Call, OwnWork, Page, PageRequest, ServiceError, Services};
use crate::domain::{FieldSpec, RecordClass, RecordClassId, Role, Violations};
use crate::store::{StoreError, Write};

/// The starter catalogue (`catalog/starter.toml`): its classes are added
/// on start when the catalogue lacks them.
pub const STARTER_CATALOGUE: &str = include_str!("../../catalog/starter.toml");

#[derive(Debug, Deserialize)]
struct CatalogueFile {
    #[serde(rename = "class")]
    classes: Vec<ClassFile>,
}

#[derive(Debug, Deserialize)]
struct ClassFile {
    id: String,
    display_name: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "field")]
    fields: Vec<FieldSpec>,
}

/// Why the starter catalogue could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the starter catalogue is not valid TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("record class {id} in the starter catalogue is not valid: {violations}")]
    Invalid { id: String, violations: Violations },
    #[error("could not store the starter catalogue: {0}")]
    Store(#[from] StoreError),
}

/// Parses a catalogue file into checked record classes.
pub fn parse_catalogue(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<RecordClass>, CatalogueError> {
    let file: CatalogueFile = toml::from_str(text)?;
    file.classes
        .into_iter()
        .map(|c| {
            RecordClass::parse(&c.id, &c.display_name, &c.description, c.fields, now).map_err(
                |violations| CatalogueError::Invalid {
                    id: c.id.clone(),
                    violations,
                },
            )
        })
        .collect()
}

impl Services {
    /// Adds every class of the starter catalogue that the catalogue does
    /// not hold yet (on first start, all of them; after an upgrade, the
    /// classes the new starter catalogue brings), in one audited
    /// transaction. Classes are only ever added, so one held is left as
    /// it is. Returns how many classes were added.
    pub async fn load_starter_catalogue(&self) -> Result<usize, CatalogueError> {
        // Another process sharing the database may add some of them
        // first; then what is still missing is looked for again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.add_missing_starter_classes().await {
                Err(CatalogueError::Store(StoreError::AlreadyExists(_))) if attempts < 3 => {}
                other => return other,
            }
        }
    }

    async fn add_missing_starter_classes(&self) -> Result<usize, CatalogueError> {
        let now = self.now();
        let mut missing = vec![];
        for class in parse_catalogue(STARTER_CATALOGUE, now)? {
            if self.store.record_class(&class.id).await?.is_none() {
                missing.push(class);
            }
        }
        if missing.is_empty() {
            return Ok(0);
        }
        let count = missing.len();
        let names: Vec<String> = missing.iter().map(|c| c.id.resource_name()).collect();
        let writes: Vec<Write> = missing.into_iter().map(Write::InsertRecordClass).collect();
        let draft = OwnWork {
            action: "accord:load-starter-catalogue",
            subject: String::new(),
            records: names,
            controller: String::new(),
            reason: format!("{count} record classes"),
        }
        .entry(now);
        self.store.commit(writes, draft).await?;
        Ok(count)
    }

    /// Declares a record class (operator only).
    pub async fn create_record_class(
        &self,
        call: &Call,
        class: RecordClass,
    ) -> Result<Audited<RecordClass>, ServiceError> {
        call.require_role(Role::OPERATOR)?;
        call.note_fields(class.fields.iter().map(|f| f.name.clone()).collect());
        self.commit(call, vec![Write::InsertRecordClass(class.clone())], class)
            .await
    }

    /// Reads one record class.
    pub async fn get_record_class(
        &self,
        call: &Call,
        id: &RecordClassId,
    ) -> Result<Audited<RecordClass>, ServiceError> {
        let class = self
            .record_class(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.resource_name()))?;
        self.commit(call, vec![], RecordClass::clone(&class)).await
    }

    /// The record class `id`, from memory once read (a class never
    /// changes once in the catalogue).
    pub(super) async fn record_class(
        &self,
        id: &RecordClassId,
    ) -> Result<Option<Arc<RecordClass>>, ServiceError> {
        if let Some(class) = self.classes.get(id) {
            return Ok(Some(class));
        }
        let read = self.store.record_class(id).await?.map(Arc::new);
        if let Some(class) = &read {
            self.classes.insert(class.id.clone(), Arc::clone(class));
        }
        Ok(read)
    }

    /// Lists record classes in id order.
    pub async fn list_record_classes(
        &self,
        call: &Call,
        req: &PageRequest,
    ) -> Result<Audited<Page<RecordClass>>, ServiceError> {
        let paging = self.tokens.paging(call, "ListRecordClasses", req)?;
        let items = self
            .store
            .record_classes(paging.after(), paging.size() + 1)
            .await?;
        let page = paging.page(items, |c| c.id.as_str().to_owned());
        self.commit(call, vec![], page).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_catalogue_is_valid() {
        let classes = parse_catalogue(STARTER_CATALOGUE, chrono::Utc::now()).unwrap();
        let ids: Vec<&str> = classes.iter().map(|c| c.id.as_str()).collect();
        for expected in [
            "health.summary",
            "social_care.referral",
            "safeguarding.concern",
            "police.incident",
            "contact.record",
        ] {
            assert!(ids.contains(&expected), "{expected} missing from {ids:?}");
        }
    }
}
