//! The console's server-side sessions.
//!
//! The browser holds only a random session id, in a `__Host-` cookie that
//! is `Secure`, `HttpOnly` and `SameSite=Lax` (the identity provider's
//! redirect back is a top-level navigation from another site, which `Lax`
//! lets through; no form post from another site is). Everything else —
//! the sign-in in progress, the staff member's tokens, the CSRF token —
//! stays on the server, so tokens never reach the browser's JavaScript.
//! Sessions are kept by their id's SHA-256, expire after a time idle and a
//! longest time, and never outlive the staff member's token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The session cookie's name: `__Host-` binds it to this origin, over
/// HTTPS, for every path.
pub const COOKIE: &str = "__Host-accord-console";

/// A sign-in under way: what the identity provider's answer is checked
/// against.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The `state` sent, which the answer must carry back.
    pub state: String,
    /// The PKCE code verifier (RFC 7636), sent with the code.
    pub verifier: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// Where to go once signed in (a path of the console).
    pub then: String,
}

/// A signed-in staff member.
#[derive(Debug, Clone)]
pub struct Staff {
    /// Their id, as their agency names them.
    pub principal: String,
    /// Their display name, if the identity provider gave one.
    pub name: String,
    /// The token forwarded to Accord on each call: never sent to the
    /// browser.
    pub access_token: String,
    /// When the token expires (the session ends then).
    pub expires: Instant,
    /// The token each form must carry back (CSRF).
    pub csrf: String,
}

impl Staff {
    /// How the console names them: `Name (id)`, or the id alone.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.principal.clone()
        } else {
            format!("{} ({})", self.name, self.principal)
        }
    }

    /// `message` as a call to Accord bearing their token.
    pub fn call<T>(&self, message: T) -> Option<tonic::Request<T>> {
        let mut call = tonic::Request::new(message);
        let value = format!("Bearer {}", self.access_token).parse().ok()?;
        call.metadata_mut().insert("authorization", value);
        Some(call)
    }
}

/// What a session holds.
#[derive(Debug, Clone)]
pub enum State {
    SigningIn(Pending),
    SignedIn(Staff),
}

#[derive(Debug)]
struct Entry {
    state: State,
    created: Instant,
    seen: Instant,
}

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after sign-in whatever happens.
    pub longest: Duration,
}

/// Every session of this console process.
#[derive(Debug)]
pub struct Sessions {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    lifetimes: Lifetimes,
}

/// How many sessions are kept at most; beyond, expired ones are dropped and
/// then the oldest.
const CAPACITY: usize = 10_000;

/// A new random id or token: 32 bytes from the OS, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key a session is kept under: its id's digest.
fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl Sessions {
    pub fn new(lifetimes: Lifetimes) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            lifetimes,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session holding `state`; returns its id (the cookie's
    /// value).
    pub fn start(&self, state: State) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut entries = self.entries();
        if entries.len() >= CAPACITY {
            let lifetimes = self.lifetimes;
            entries.retain(|_, e| live(e, now, lifetimes));
            if entries.len() >= CAPACITY
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.created)
                    .map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key(&id),
            Entry {
                state,
                created: now,
                seen: now,
            },
        );
        id
    }

    /// The state of the live session `id`, marking it seen; an expired one
    /// is ended.
    pub fn get(&self, id: &str) -> Option<State> {
        let now = Instant::now();
        let mut entries = self.entries();
        let k = key(id);
        let entry = entries.get_mut(&k)?;
        if !live(entry, now, self.lifetimes) {
            entries.remove(&k);
            return None;
        }
        entry.seen = now;
        Some(entry.state.clone())
    }

    /// Ends the session `id` and returns what it held.
    pub fn end(&self, id: &str) -> Option<State> {
        self.entries().remove(&key(id)).map(|e| e.state)
    }
}

/// Whether `entry` is still live at `now`.
fn live(entry: &Entry, now: Instant, lifetimes: Lifetimes) -> bool {
    let signed_in_until = match &entry.state {
        State::SignedIn(staff) => staff.expires,
        // A sign-in not finished within ten minutes is abandoned.
        State::SigningIn(_) => entry.created + Duration::from_secs(600),
    };
    now < signed_in_until
        && now.duration_since(entry.seen) < lifetimes.idle
        && now.duration_since(entry.created) < lifetimes.longest
}

/// The value of the session cookie of a request's `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
}

/// The `Set-Cookie` value of the session `id` (`None`: removes it).
pub fn set_cookie(id: Option<&str>) -> String {
    let mut c = cookie::Cookie::build((COOKIE, id.unwrap_or_default().to_owned()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .build();
    if id.is_none() {
        c.make_removal();
    }
    c.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(expires: Instant) -> State {
        State::SignedIn(Staff {
            principal: "sw-1".into(),
            name: String::new(),
            access_token: "t".into(),
            expires,
            csrf: random_token(),
        })
    }

    #[test]
    fn sessions_end_when_idle_expired_or_ended() {
        let sessions = Sessions::new(Lifetimes {
            idle: Duration::from_secs(60),
            longest: Duration::from_secs(3600),
        });
        let id = sessions.start(staff(Instant::now() + Duration::from_secs(600)));
        assert!(sessions.get(&id).is_some());
        assert!(sessions.get("forged").is_none());
        assert!(sessions.end(&id).is_some());
        assert!(sessions.get(&id).is_none());
        // A session whose token has expired is over.
        let expired = sessions.start(staff(Instant::now()));
        assert!(sessions.get(&expired).is_none());
        // Ids are random and long.
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
    }

    #[test]
    fn the_cookie_is_host_only_secure_http_only_and_lax() {
        let set = set_cookie(Some("abc"));
        for part in [
            "__Host-accord-console=abc",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set.contains("Domain"), "{set}");
        assert!(set_cookie(None).contains("Max-Age=0"));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; __Host-accord-console=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&headers).as_deref(), Some("xyz"));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
    }
}
