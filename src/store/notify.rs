//! Wake-ups for those following events: a counter that grows when a batch
//! holding events commits in this process and, on PostgreSQL, when one
//! commits in any process on the database (each such batch sends a
//! `NOTIFY` that commits with it; a listener here turns it into a bump).
//!
//! A wake-up is never the source of truth: a follower reads the events
//! themselves from storage, and only learns here that it should look now.
//! A wake-up missed (the listener reconnecting after the database went
//! away) costs a follower at most its polling interval; every reconnection
//! is itself a wake-up.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{OnceCell, watch};

/// The channel batches with events notify on PostgreSQL.
pub(super) const CHANNEL: &str = "accord_events";

/// How long the listener waits for a notification before it checks that
/// the store it serves still exists.
const LISTEN_SLICE: Duration = Duration::from_secs(10);

/// How long the listener waits before trying again when the database
/// cannot be reached.
const RETRY: Duration = Duration::from_secs(1);

/// The wake-ups of one store's followers.
#[derive(Debug, Clone)]
pub(super) struct Changes {
    tx: Arc<watch::Sender<u64>>,
    /// The PostgreSQL database to listen on, if any.
    listen_on: Option<String>,
    listening: Arc<OnceCell<()>>,
}

impl Changes {
    /// Wake-ups of this process's commits, and of every process's when
    /// `listen_on` names a PostgreSQL database.
    pub(super) fn new(listen_on: Option<String>) -> Self {
        Self {
            tx: Arc::new(watch::channel(0).0),
            listen_on,
            listening: Arc::new(OnceCell::new()),
        }
    }

    /// Wakes every follower.
    pub(super) fn bump(&self) {
        bump(&self.tx);
    }

    /// A receiver of wake-ups; the first one starts the listener (on the
    /// runtime of its caller), which ends once the store is dropped.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        if let Some(url) = &self.listen_on
            && self.listening.set(()).is_ok()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(listen(url.clone(), Arc::downgrade(&self.tx)));
        }
        self.tx.subscribe()
    }
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|n| *n = n.wrapping_add(1));
}

/// Listens on [`CHANNEL`] and bumps `tx` for every notification and every
/// reconnection, until `tx` is gone.
async fn listen(url: String, tx: Weak<watch::Sender<u64>>) {
    let mut listener: Option<PgListener> = None;
    while let Some(sender) = tx.upgrade() {
        let l = match &mut listener {
            Some(l) => l,
            empty => match connect(&url).await {
                Ok(l) => {
                    // Whatever was committed while nobody listened.
                    bump(&sender);
                    empty.insert(l)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for events on the database; retrying");
                    drop(sender);
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        match tokio::time::timeout(LISTEN_SLICE, l.try_recv()).await {
            Err(_) => {}
            Ok(Ok(_)) => bump(&sender),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "listening for events failed; reconnecting");
                listener = None;
                drop(sender);
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
