//! A map shared between threads that holds at most a fixed number of
//! entries: when it is full, it is emptied and fills again from the uses
//! that follow. Simple and bounded in memory; Accord's in-memory views
//! (records read recently, record classes, decisions already made) are
//! such maps.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A map of at most `capacity` entries.
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    capacity: usize,
    entries: RwLock<HashMap<K, V>>,
}

impl<K: Eq + Hash, V: Clone> BoundedMap<K, V> {
    /// An empty map that holds at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The value held for `key`, if any.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.read().get(key).cloned()
    }

    /// Holds `value` for `key`, emptying the map first if it is full and
    /// `key` is new.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.write();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, value);
    }

    /// Forgets `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.write().remove(key);
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A thread that panicked holding the lock left the map whole (every
    // change is one `HashMap` call), so a poisoned lock is used as it is.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<K, V>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<K, V>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_starts_again_when_full() {
        let map = BoundedMap::new(3);
        for k in 0..3 {
            map.insert(k, k * 10);
        }
        assert_eq!(map.len(), 3);
        // Replacing a key held does not empty it.
        map.insert(1, 11);
        assert_eq!((map.len(), map.get(&1)), (3, Some(11)));
        // A new key when full does.
        map.insert(7, 70);
        assert_eq!((map.len(), map.get(&0), map.get(&7)), (1, None, Some(70)));
        map.remove(&7);
        assert!(map.is_empty());
    }
}
