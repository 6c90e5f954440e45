//! Admitting connections: at most so many from one peer address at once,
//! and at most so many TLS handshakes in progress, so that a flood of
//! connections or of stalled handshakes from one place cannot take every
//! slot. A connection over either limit is closed at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::Connected;

/// The connection limits, shared by every connection of one listener.
#[derive(Debug, Clone)]
pub struct Peers {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_peer: usize,
    handshakes: Arc<Semaphore>,
}

/// Held while a connection from a peer is open.
#[derive(Debug)]
pub struct PeerSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    peer: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

impl Peers {
    /// At most `per_peer` connections from one address, and at most
    /// `handshakes` TLS handshakes in progress.
    pub fn new(per_peer: usize, handshakes: usize) -> Self {
        Self {
            open: Arc::default(),
            per_peer,
            handshakes: Arc::new(Semaphore::new(handshakes)),
        }
    }

    /// A slot for a new connection from `peer`, if it has fewer than its
    /// limit open.
    pub fn admit(&self, peer: IpAddr) -> Option<PeerSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(peer).or_default();
        if *n >= self.per_peer {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            open: Arc::clone(&self.open),
            peer,
        })
    }

    /// Leave to start a TLS handshake, if fewer than the limit are in
    /// progress; held until the handshake ends.
    pub fn handshake(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.handshakes).try_acquire_owned().ok()
    }
}

/// A connection holding its peer's slot until it closes.
#[derive(Debug)]
pub struct Admitted<T> {
    inner: T,
    _slot: PeerSlot,
}

impl<T> Admitted<T> {
    /// `inner`, holding `slot`.
    pub fn new(inner: T, slot: PeerSlot) -> Self {
        Self { inner, _slot: slot }
    }
}

impl<T: Connected> Connected for Admitted<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Admitted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Admitted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_peer_and_given_back() {
        let peers = Peers::new(2, 1);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = peers.admit(a).unwrap();
        let _second = peers.admit(a).unwrap();
        assert!(peers.admit(a).is_none(), "a third from one peer is refused");
        assert!(peers.admit(b).is_some(), "another peer is not affected");
        drop(first);
        let _third = peers.admit(a).expect("a slot given back is free again");
        assert!(peers.admit(a).is_none());
        let permit = peers.handshake().unwrap();
        assert!(peers.handshake().is_none());
        drop(permit);
        assert!(peers.handshake().is_some());
    }
}
