//! Paging: page sizes, and page tokens that reveal nothing.
//!
//! A page token is the position a listing goes on from, encrypted and
//! authenticated (XChaCha20-Poly1305) with a key derived from the ledger
//! signing key, so every process sharing that key reads the others'
//! tokens. The token is bound to the caller (agency and staff member) and
//! to the listing (its method and filters): a token altered, made up, or
//! made for another caller or listing is refused as INVALID_ARGUMENT. The
//! position may be that of an item the caller may not see (where a page
//! ran out of scanning budget); encrypted, it says nothing about it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN_BASE64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};

use super::{Call, ServiceError};
use crate::domain::Violations;
use crate::domain::event::{EventPosition, SubscriptionId};
use crate::store::After;

/// The most items one page may hold.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// The first byte of every token: its format.
const FORMAT: u8 = 1;
/// Nonce length of XChaCha20-Poly1305.
const NONCE: usize = 24;

/// What a `List*` call asked for: a page size and a token from the page
/// before (empty for the first page).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub size: u32,
    pub token: String,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_token: String,
}

/// Seals and opens page tokens.
#[derive(Clone)]
pub struct PageTokens {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageTokens").finish_non_exhaustive()
    }
}

fn not_issued() -> ServiceError {
    Violations::one(
        "page_token",
        "is not a token issued to this caller for this listing",
    )
    .into()
}

impl PageTokens {
    /// Tokens sealed with `secret`.
    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(secret)),
        }
    }

    /// The token of `position` in the listing `scope`.
    fn seal(&self, scope: &str, position: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: position.as_bytes(),
            aad: scope.as_bytes(),
        };
        // Encrypting in memory has no failure but a message too long for
        // the cipher, which a position never is; an empty token would end
        // the listing rather than leak.
        match self.cipher.encrypt(&nonce, payload) {
            Ok(sealed) => {
                let mut bytes = Vec::with_capacity(1 + NONCE + sealed.len());
                bytes.push(FORMAT);
                bytes.extend_from_slice(&nonce);
                bytes.extend_from_slice(&sealed);
                TOKEN_BASE64.encode(bytes)
            }
            Err(_) => String::new(),
        }
    }

    /// The position `token` holds, if it was sealed for `scope`.
    fn open(&self, scope: &str, token: &str) -> Result<String, ServiceError> {
        let bytes = TOKEN_BASE64.decode(token).map_err(|_| not_issued())?;
        let Some((&FORMAT, rest)) = bytes.split_first() else {
            return Err(not_issued());
        };
        if rest.len() < NONCE {
            return Err(not_issued());
        }
        let (nonce, sealed) = rest.split_at(NONCE);
        let position = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: scope.as_bytes(),
                },
            )
            .map_err(|_| not_issued())?;
        String::from_utf8(position).map_err(|_| not_issued())
    }

    /// The cursor of `position` among the events of `subscription`: sealed
    /// as a page token is, and bound to the subscription (and so to its
    /// agency) rather than to a staff member, since the systems following
    /// a subscription may change hands.
    pub fn event_cursor(&self, subscription: &SubscriptionId, position: EventPosition) -> String {
        self.seal(
            &cursor_scope(subscription),
            &format!("{}/{}", position.entry, position.ord),
        )
    }

    /// The position `cursor` holds, if it was sealed for `subscription`'s
    /// events.
    pub fn open_event_cursor(
        &self,
        subscription: &SubscriptionId,
        cursor: &str,
    ) -> Result<EventPosition, ServiceError> {
        let refused = || -> ServiceError {
            Violations::one(
                "cursor",
                "is not a cursor issued for this subscription's events",
            )
            .into()
        };
        let position = self
            .open(&cursor_scope(subscription), cursor)
            .map_err(|_| refused())?;
        position
            .split_once('/')
            .and_then(|(entry, ord)| {
                Some(EventPosition {
                    entry: entry.parse().ok()?,
                    ord: ord.parse().ok()?,
                })
            })
            .ok_or_else(refused)
    }

    /// The paging of one call of a listing described by `listing` (its
    /// method and filters).
    pub fn paging(
        &self,
        call: &Call,
        listing: &str,
        req: &PageRequest,
    ) -> Result<Paging<'_>, ServiceError> {
        let size = page_size(req.size)?;
        let scope = format!(
            "{}\n{}\n{listing}",
            call.caller.agency.as_str(),
            call.caller.principal.as_str()
        );
        let position = if req.token.is_empty() {
            None
        } else {
            Some(self.open(&scope, &req.token)?)
        };
        Ok(Paging {
            tokens: self,
            scope,
            size,
            position,
        })
    }
}

/// The page size of a request asking for `requested` items (0: the
/// default).
pub fn page_size(requested: u32) -> Result<u32, ServiceError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n <= MAX_PAGE_SIZE => Ok(n),
        _ => Err(Violations::one("page_size", format!("must be at most {MAX_PAGE_SIZE}")).into()),
    }
}

/// What an event cursor is sealed for.
fn cursor_scope(subscription: &SubscriptionId) -> String {
    format!("events\n{}", subscription.resource_name())
}

/// One call's paging: its size, where it goes on from, and how the next
/// page's token is made.
#[derive(Debug)]
pub struct Paging<'a> {
    tokens: &'a PageTokens,
    scope: String,
    size: u32,
    position: Option<String>,
}

impl Paging<'_> {
    /// The page size.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Where a listing ordered by a text key goes on from.
    pub fn after(&self) -> After<String> {
        self.position.clone().map_or(After::Start, After::Key)
    }

    /// Where a listing ordered by a number goes on from.
    pub fn after_number(&self) -> Result<After<i64>, ServiceError> {
        match &self.position {
            None => Ok(After::Start),
            Some(p) => p.parse().map(After::Key).map_err(|_| not_issued()),
        }
    }

    /// Where a listing ordered by (time, id) goes on from, as keyed by
    /// [`time_key`].
    pub fn after_time(&self) -> Result<After<(i64, String)>, ServiceError> {
        match &self.position {
            None => Ok(After::Start),
            Some(p) => p
                .split_once('/')
                .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
                .map(After::Key)
                .ok_or_else(not_issued),
        }
    }

    /// The token that goes on from `position`.
    pub fn token(&self, position: &str) -> String {
        self.tokens.seal(&self.scope, position)
    }

    /// A page from up to `size + 1` items: the extra one only says that
    /// there is more.
    pub fn page<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        let next_token = if items.len() > size {
            items.truncate(size);
            items
                .last()
                .map(|last| self.token(&key(last)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Page { items, next_token }
    }
}

/// The page key of an item ordered by (time, id).
pub fn time_key(time: DateTime<Utc>, id: &str) -> String {
    format!("{}/{id}", time.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_position_reads_back_only_in_its_scope(
            scope in ".{0,40}", other in ".{0,40}", position in ".{0,80}"
        ) {
            let tokens = PageTokens::new(&[3; 32]);
            let token = tokens.seal(&scope, &position);
            prop_assert_eq!(tokens.open(&scope, &token).unwrap(), position);
            if other != scope {
                prop_assert!(tokens.open(&other, &token).is_err());
            }
        }

        #[test]
        fn made_up_tokens_are_refused(token in ".{0,120}") {
            let tokens = PageTokens::new(&[3; 32]);
            prop_assert!(tokens.open("scope", &token).is_err());
        }
    }

    #[test]
    fn tokens_open_only_for_their_scope() {
        let tokens = PageTokens::new(&[7; 32]);
        let token = tokens.seal("leeds-cc\nsw-1\nListAgencies", "leeds-th");
        assert!(!token.contains("leeds-th"));
        assert_eq!(
            tokens.open("leeds-cc\nsw-1\nListAgencies", &token).unwrap(),
            "leeds-th"
        );
        assert!(tokens.open("leeds-cc\nsw-2\nListAgencies", &token).is_err());
        assert!(
            PageTokens::new(&[8; 32])
                .open("leeds-cc\nsw-1\nListAgencies", &token)
                .is_err()
        );
        assert!(
            tokens
                .open("leeds-cc\nsw-1\nListAgencies", &token[..20])
                .is_err()
        );
        assert!(tokens.open("leeds-cc\nsw-1\nListAgencies", "").is_err());
        assert!(
            tokens
                .open("leeds-cc\nsw-1\nListAgencies", "not base64!")
                .is_err()
        );
        // Two tokens of one position differ (a fresh nonce each time).
        assert_ne!(
            token,
            tokens.seal("leeds-cc\nsw-1\nListAgencies", "leeds-th")
        );
    }
}
