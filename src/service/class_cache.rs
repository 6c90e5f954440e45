//! Record classes, held in memory once read. A record class never changes
//! once it is in the catalogue (classes are only ever added), so a class
//! held here is the class as stored, with nothing to check at commit.
//!
//! At most [`ClassCache::CAPACITY`] classes are held; when it is full, the
//! whole cache is emptied and fills again from the reads that follow.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::{RecordClass, RecordClassId};

/// Record classes as read from the catalogue.
#[derive(Debug, Default)]
pub struct ClassCache {
    classes: RwLock<HashMap<RecordClassId, Arc<RecordClass>>>,
}

impl ClassCache {
    /// The most classes held.
    pub const CAPACITY: usize = 4096;

    /// The class `id`, if it was read here.
    pub fn get(&self, id: &RecordClassId) -> Option<Arc<RecordClass>> {
        self.classes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Remembers `class`, just read.
    pub fn put(&self, class: Arc<RecordClass>) {
        let mut classes = self
            .classes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if classes.len() >= Self::CAPACITY && !classes.contains_key(&class.id) {
            classes.clear();
        }
        classes.insert(class.id.clone(), class);
    }
}
