//! TLS 1.3 through embedded-tls: caller-owned record buffers and the (explicit) trust mode.

use core::cell::{Cell, UnsafeCell};
use core::marker::PhantomData;

/// How a TLS server is trusted.
///
/// embedded-tls cannot check a certificate chain against trust anchors on `no_std`, so
/// the only mode today encrypts the connection **without verifying who is on the other
/// end**: anyone able to intercept the traffic can read it, including the API key. It
/// exists for networks where that risk is accepted (a trusted uplink, a relay on the same
/// site); prefer an `http://` relay on a trusted network, or a gateway with verified TLS,
/// where it is not.
///
/// ```
/// use amplitude_embassy_net::TlsMode;
/// let mode = TlsMode::InsecureNoVerify;
/// assert!(!mode.verifies_server());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Encrypt, but accept any certificate from any server. Not authenticated.
    InsecureNoVerify,
}

impl TlsMode {
    /// Whether this mode authenticates the server (always `false` today).
    pub const fn verifies_server(self) -> bool {
        match self {
            TlsMode::InsecureNoVerify => false,
        }
    }
}

/// Record buffers for one TLS connection, owned by the caller (like embassy-net's
/// `TcpClientState`), so their size is fixed at compile time.
///
/// `READ` must hold the largest record the server sends: 16 640 bytes for servers that do
/// not negotiate a smaller record size (most). `WRITE` must hold the client's handshake
/// records and bounds the size of the records the client sends; 4096 is plenty.
///
/// ```
/// use amplitude_embassy_net::TlsBuffers;
/// let buffers: TlsBuffers = TlsBuffers::new();
/// assert_eq!(buffers.sizes(), (16_640, 4096));
/// ```
pub struct TlsBuffers<const READ: usize = 16_640, const WRITE: usize = 4096> {
    in_use: Cell<bool>,
    read: UnsafeCell<[u8; READ]>,
    write: UnsafeCell<[u8; WRITE]>,
}

impl<const READ: usize, const WRITE: usize> TlsBuffers<READ, WRITE> {
    /// Zeroed buffers, usable in a `static`/`StaticCell` or on a task's stack.
    pub const fn new() -> Self {
        Self {
            in_use: Cell::new(false),
            read: UnsafeCell::new([0; READ]),
            write: UnsafeCell::new([0; WRITE]),
        }
    }

    /// The `(read, write)` buffer sizes in bytes.
    pub const fn sizes(&self) -> (usize, usize) {
        (READ, WRITE)
    }

    pub(crate) fn slot(&self) -> TlsSlot<'_> {
        TlsSlot {
            in_use: &self.in_use,
            read: &self.read,
            write: &self.write,
        }
    }
}

impl<const READ: usize, const WRITE: usize> Default for TlsBuffers<READ, WRITE> {
    fn default() -> Self {
        Self::new()
    }
}

/// Size-erased access to a [`TlsBuffers`].
pub(crate) struct TlsSlot<'a> {
    in_use: &'a Cell<bool>,
    read: &'a UnsafeCell<[u8]>,
    write: &'a UnsafeCell<[u8]>,
}

/// Proof that the buffers are lent out; dropping it returns them.
///
/// Keep it in the same struct as the connection that holds the slices, declared *after*
/// it, so the connection (and with it the slices) is dropped first.
pub(crate) struct TlsLease<'a> {
    in_use: &'a Cell<bool>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for TlsLease<'_> {
    fn drop(&mut self) {
        self.in_use.set(false);
    }
}

/// The pair of record buffers handed to one TLS connection.
pub(crate) type Leased<'a> = (TlsLease<'a>, &'a mut [u8], &'a mut [u8]);

impl<'a> TlsSlot<'a> {
    /// Lend the buffers out, or `None` while an earlier lease is alive.
    pub(crate) fn lease(&self) -> Option<Leased<'a>> {
        if self.in_use.replace(true) {
            return None;
        }
        // SAFETY: `in_use` was false, so no other slice into these buffers exists: every
        // slice handed out lives inside a connection that is dropped before its lease
        // (which resets `in_use`). `TlsBuffers` is `!Sync` (it holds a `Cell`), so no
        // other thread can lease concurrently. The slices live no longer than `'a`, the
        // borrow of the `TlsBuffers`.
        let (read, write) = unsafe { (&mut *self.read.get(), &mut *self.write.get()) };
        Some((
            TlsLease {
                in_use: self.in_use,
                _not_send: PhantomData,
            },
            read,
            write,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_lent_once_and_return_when_the_lease_drops() {
        let buffers: TlsBuffers<32, 16> = TlsBuffers::new();
        let slot = buffers.slot();
        let (lease, read, write) = slot.lease().expect("first lease");
        assert_eq!((read.len(), write.len()), (32, 16));
        read[0] = 1;
        assert!(
            slot.lease().is_none(),
            "a second lease while the first lives"
        );
        drop(lease);
        let (_lease, read, _) = slot.lease().expect("lease after return");
        assert_eq!(read[0], 1);
    }

    #[test]
    fn insecure_mode_does_not_claim_to_verify() {
        assert!(!TlsMode::InsecureNoVerify.verifies_server());
    }
}
