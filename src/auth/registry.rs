//! This process's view of the registry's certificate identities and token
//! issuers, as authentication reads them on every call.
//!
//! Every change to either advances `policy_state.registry_version` in its
//! own transaction. A call authenticates on the version this process holds
//! ([`Basis::Held`]), without reading it, and its ledger entry commits only
//! if the registry is still at that version (the write path checks it under
//! the ledger head's lock); a call whose entry finds it moved is
//! authenticated again on the registry as it is now ([`Basis::Fresh`]),
//! which reads the counter and, if it moved — through this process or any
//! other on the same database — forgets everything remembered. So a
//! revocation or a removed issuer applies to every call whose entry
//! commits after it, everywhere. The identities a certificate matches and
//! the issuer a token names are looked up once per version and remembered.
//!
//! A lookup is remembered only if the view is still at the version its call
//! read: a lookup that raced a change is used by its own call (which was
//! concurrent with the change) and by nobody after.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Basis;
use crate::domain::credential::{CertificateIdentity, CertificateMatch, TokenIssuer};
use crate::store::{Store, StoreError};

/// How many lookups are remembered at most; when full, all are forgotten.
const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
struct View {
    version: i64,
    identities: HashMap<Vec<CertificateMatch>, Vec<CertificateIdentity>>,
    issuers: HashMap<String, Option<TokenIssuer>>,
}

impl View {
    fn make_room(&mut self) {
        if self.identities.len() + self.issuers.len() >= CAPACITY {
            self.identities.clear();
            self.issuers.clear();
        }
    }
}

/// The registry as this process has read it.
#[derive(Debug)]
pub struct Registry {
    store: Arc<dyn Store>,
    view: Mutex<View>,
}

/// The registry for one call, at the version it read.
#[derive(Debug)]
pub struct AtVersion<'a> {
    registry: &'a Registry,
    version: i64,
    /// Whether the version was read for this call.
    fresh: bool,
}

impl Registry {
    /// A view of the registry in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            view: Mutex::new(View {
                version: -1,
                ..View::default()
            }),
        }
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The registry on `basis`: as held, if a version is held, else as it
    /// is now.
    pub async fn at(&self, basis: Basis) -> Result<AtVersion<'_>, StoreError> {
        let held = self.view().version;
        if basis == Basis::Held && held >= 0 {
            return Ok(AtVersion {
                registry: self,
                version: held,
                fresh: false,
            });
        }
        self.current().await
    }

    /// The registry as it is now: reads the version, forgetting what was
    /// remembered if it moved.
    pub async fn current(&self) -> Result<AtVersion<'_>, StoreError> {
        let version = self.store.registry_version().await?;
        let mut view = self.view();
        if view.version != version {
            *view = View {
                version,
                ..View::default()
            };
        }
        Ok(AtVersion {
            registry: self,
            version,
            fresh: true,
        })
    }
}

impl AtVersion<'_> {
    /// The version.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Whether the version was read for this call rather than held.
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// The identities, revoked ones included, registered with any of
    /// `matchers`.
    pub async fn identities(
        &self,
        matchers: &[CertificateMatch],
    ) -> Result<Vec<CertificateIdentity>, StoreError> {
        if let Some(found) = self.registry.view().identities.get(matchers) {
            return Ok(found.clone());
        }
        let found = self
            .registry
            .store
            .certificate_identities_matching(matchers)
            .await?;
        let mut view = self.registry.view();
        if view.version == self.version {
            view.make_room();
            view.identities.insert(matchers.to_vec(), found.clone());
        }
        Ok(found)
    }

    /// The issuer whose tokens carry `iss`, if any.
    pub async fn issuer(&self, iss: &str) -> Result<Option<TokenIssuer>, StoreError> {
        if let Some(found) = self.registry.view().issuers.get(iss) {
            return Ok(found.clone());
        }
        let found = self.registry.store.token_issuer(iss).await?;
        let mut view = self.registry.view();
        if view.version == self.version {
            view.make_room();
            view.issuers.insert(iss.to_owned(), found.clone());
        }
        Ok(found)
    }
}
