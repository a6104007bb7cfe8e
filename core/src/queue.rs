//! The queue: encoded events in fixed memory, plus small per-event metadata.
//!
//! [`Batcher`] is the interface the client drives; [`RamQueue`] keeps records in a byte
//! arena in log order and compacts it when room is needed. A flash or file store can
//! implement the same trait.

use embassy_time::Instant;

use crate::encode::EncodeError;
use crate::json::JsonWriter;
use crate::outcome::EventId;

/// Where a record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Waiting to be sent (possibly not before `not_before`).
    #[default]
    Queued,
    /// Part of the request in flight slot `slot`, at `index` in its `events` array.
    InFlight {
        /// In-flight slot.
        slot: u8,
        /// Index in the request's `events` array.
        index: u16,
    },
}

/// Per-event metadata (about 48 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Meta {
    /// The event's id (log order).
    pub id: EventId,
    /// Monotonic time it was logged.
    pub logged_at: Instant,
    /// Not to be sent before this time (retry backoff, throttling).
    pub not_before: Instant,
    /// Hash of `device_id` (0 if none).
    pub device_key: u32,
    /// Hash of `user_id` (0 if none).
    pub user_key: u32,
    /// Failed attempts so far.
    pub attempts: u8,
    /// Largest request (in events) this record may travel in; lowered by bisection and 413.
    pub split_cap: u16,
    /// Whether the event carries its own `time`.
    pub has_time: bool,
    /// It was in a request already (retried, split or resent): send it without waiting
    /// for the batch size or interval.
    pub resend: bool,
    /// Queued or in flight.
    pub state: State,
}

impl Meta {
    /// Metadata for a newly logged event.
    pub fn new(id: EventId, now: Instant, device_key: u32, user_key: u32, has_time: bool) -> Self {
        Self {
            id,
            logged_at: now,
            not_before: now,
            device_key,
            user_key,
            attempts: 0,
            split_cap: u16::MAX,
            has_time,
            resend: false,
            state: State::Queued,
        }
    }

    /// The key that orders this record against others: the device, else the user.
    pub fn order_key(&self) -> u32 {
        if self.device_key != 0 {
            self.device_key
        } else {
            self.user_key
        }
    }
}

/// Why a record could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PushError {
    /// No room (bytes or record slots) right now.
    Full,
    /// The record is larger than the whole store could ever hold.
    TooLarge,
    /// Encoding failed for another reason.
    Encode(EncodeError),
}

/// The queue's interface: ordered records of encoded bytes plus [`Meta`].
///
/// Positions (`0..len()`) are in log order and shift when records are removed.
pub trait Batcher {
    /// Number of records stored.
    fn len(&self) -> usize;
    /// Whether no record is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes of encoded events stored.
    fn used_bytes(&self) -> usize;
    /// Most records and bytes it can hold.
    fn capacity(&self) -> (usize, usize);
    /// Append a record whose bytes `write` produces into the given writer (which spans
    /// the free space). On [`EncodeError::BufferFull`] the store may compact and call
    /// `write` again; if it still fails it returns [`PushError::Full`] (or
    /// [`PushError::TooLarge`] when the store was empty of everything else).
    fn push(
        &mut self,
        meta: Meta,
        write: &mut dyn FnMut(&mut JsonWriter<'_>) -> Result<(), EncodeError>,
    ) -> Result<(), PushError>;
    /// Metadata of the record at `pos`.
    fn meta(&self, pos: usize) -> &Meta;
    /// Mutable metadata of the record at `pos`.
    fn meta_mut(&mut self, pos: usize) -> &mut Meta;
    /// Encoded bytes of the record at `pos`.
    fn bytes(&self, pos: usize) -> &[u8];
    /// Remove every record for which `remove` returns `true`, calling `removed` with each
    /// one's metadata and bytes first. Keeps the order of the others.
    fn remove_where(
        &mut self,
        remove: &mut dyn FnMut(&Meta) -> bool,
        removed: &mut dyn FnMut(&Meta, &[u8]),
    );
}

/// One record slot of a [`RamQueue`]: metadata plus the record's place in the arena.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    meta: Meta,
    off: u32,
    len: u32,
}

impl Slot {
    /// An unused slot (to fill arrays: `[Slot::EMPTY; 64]`).
    pub const EMPTY: Slot = Slot {
        meta: Meta {
            id: EventId(0),
            logged_at: Instant::from_ticks(0),
            not_before: Instant::from_ticks(0),
            device_key: 0,
            user_key: 0,
            attempts: 0,
            split_cap: 0,
            has_time: false,
            resend: false,
            state: State::Queued,
        },
        off: 0,
        len: 0,
    };
}

/// The RAM queue: a byte arena and a slot table, both caller-owned storage (arrays on
/// embedded targets, boxed slices on servers), so memory is fixed and known.
///
/// ```
/// use amplitude_core::queue::{Batcher, Meta, RamQueue, Slot};
/// use amplitude_core::outcome::EventId;
/// use embassy_time::Instant;
///
/// let mut q = RamQueue::new([0u8; 64], [Slot::EMPTY; 4]);
/// let meta = Meta::new(EventId(0), Instant::from_ticks(0), 1, 0, false);
/// q.push(meta, &mut |w| Ok(w.raw(br#"{"event_type":"a"}"#)?)).unwrap();
/// assert_eq!(q.bytes(0), br#"{"event_type":"a"}"#);
/// ```
pub struct RamQueue<B, S> {
    arena: B,
    slots: S,
    len: usize,
    /// End of the last record in the arena (records are kept in log order).
    head: usize,
    /// Bytes held by live records.
    used: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, S: AsRef<[Slot]> + AsMut<[Slot]>> RamQueue<B, S> {
    /// A queue over `arena` bytes and `slots` records.
    pub fn new(arena: B, slots: S) -> Self {
        Self {
            arena,
            slots,
            len: 0,
            head: 0,
            used: 0,
        }
    }

    /// Move live records down so that all free space is at the end.
    fn compact(&mut self) {
        let arena = self.arena.as_mut();
        let slots = &mut self.slots.as_mut()[..self.len];
        let mut at = 0usize;
        for s in slots.iter_mut() {
            let (off, len) = (s.off as usize, s.len as usize);
            if off != at {
                arena.copy_within(off..off + len, at);
                s.off = at as u32;
            }
            at += len;
        }
        self.head = at;
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, S: AsRef<[Slot]> + AsMut<[Slot]>> Batcher for RamQueue<B, S> {
    fn len(&self) -> usize {
        self.len
    }

    fn used_bytes(&self) -> usize {
        self.used
    }

    fn capacity(&self) -> (usize, usize) {
        (self.slots.as_ref().len(), self.arena.as_ref().len())
    }

    fn push(
        &mut self,
        meta: Meta,
        write: &mut dyn FnMut(&mut JsonWriter<'_>) -> Result<(), EncodeError>,
    ) -> Result<(), PushError> {
        if self.len >= self.slots.as_ref().len() {
            return Err(if self.slots.as_ref().is_empty() {
                PushError::TooLarge
            } else {
                PushError::Full
            });
        }
        let mut compacted = false;
        loop {
            let start = self.head;
            let mut w = JsonWriter::new(&mut self.arena.as_mut()[start..]);
            match write(&mut w) {
                Ok(()) => {
                    let len = w.len();
                    self.slots.as_mut()[self.len] = Slot {
                        meta,
                        off: start as u32,
                        len: len as u32,
                    };
                    self.len += 1;
                    self.head += len;
                    self.used += len;
                    return Ok(());
                }
                Err(EncodeError::BufferFull) if !compacted && self.used < self.head => {
                    self.compact();
                    compacted = true;
                }
                Err(EncodeError::BufferFull) => {
                    return Err(if self.len == 0 {
                        PushError::TooLarge
                    } else {
                        PushError::Full
                    });
                }
                Err(e) => return Err(PushError::Encode(e)),
            }
        }
    }

    fn meta(&self, pos: usize) -> &Meta {
        &self.slots.as_ref()[pos].meta
    }

    fn meta_mut(&mut self, pos: usize) -> &mut Meta {
        &mut self.slots.as_mut()[pos].meta
    }

    fn bytes(&self, pos: usize) -> &[u8] {
        let s = &self.slots.as_ref()[pos];
        &self.arena.as_ref()[s.off as usize..(s.off + s.len) as usize]
    }

    fn remove_where(
        &mut self,
        remove: &mut dyn FnMut(&Meta) -> bool,
        removed: &mut dyn FnMut(&Meta, &[u8]),
    ) {
        let arena = self.arena.as_ref();
        let slots = &mut self.slots.as_mut()[..self.len];
        let mut keep = 0usize;
        for i in 0..slots.len() {
            let s = slots[i];
            if remove(&s.meta) {
                removed(&s.meta, &arena[s.off as usize..(s.off + s.len) as usize]);
                self.used -= s.len as usize;
            } else {
                slots[keep] = s;
                keep += 1;
            }
        }
        self.len = keep;
        if keep == 0 {
            self.head = 0;
        } else if keep == slots.len() {
            // nothing removed
        } else {
            let last = slots[keep - 1];
            // Space after the last live record is free again.
            self.head = (last.off + last.len) as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: u64) -> Meta {
        Meta::new(EventId(id), Instant::from_ticks(0), id as u32 + 1, 0, false)
    }

    fn push(q: &mut RamQueue<[u8; 32], [Slot; 4]>, id: u64, body: &[u8]) -> Result<(), PushError> {
        q.push(meta(id), &mut |w| Ok(w.raw(body)?))
    }

    #[test]
    fn compacts_holes_to_make_room_and_keeps_order() {
        let mut q = RamQueue::new([0u8; 32], [Slot::EMPTY; 4]);
        push(&mut q, 0, b"aaaaaaaaaa").unwrap();
        push(&mut q, 1, b"bbbbbbbbbb").unwrap();
        push(&mut q, 2, b"cccccccccc").unwrap();
        assert_eq!(push(&mut q, 3, b"dddddddddd"), Err(PushError::Full));
        q.remove_where(&mut |m| m.id == EventId(1), &mut |_, b| {
            assert_eq!(b, b"bbbbbbbbbb")
        });
        push(&mut q, 3, b"dddddddddd").unwrap();
        let all: heapless::Vec<&[u8], 4> = (0..q.len()).map(|i| q.bytes(i)).collect();
        assert_eq!(
            &all[..],
            &[&b"aaaaaaaaaa"[..], b"cccccccccc", b"dddddddddd"]
        );
        assert_eq!(q.used_bytes(), 30);
    }

    #[test]
    fn slot_table_limit_and_oversize_are_distinguished() {
        let mut q = RamQueue::new([0u8; 32], [Slot::EMPTY; 4]);
        assert_eq!(push(&mut q, 0, &[b'x'; 33]), Err(PushError::TooLarge));
        for i in 0..4 {
            push(&mut q, i, b"x").unwrap();
        }
        assert_eq!(push(&mut q, 4, b"x"), Err(PushError::Full));
    }
}
