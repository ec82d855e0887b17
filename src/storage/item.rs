//! One stored item: its metadata slot and the one heap allocation that
//! holds its key then its value.
//!
//! This module owns the partition's only `unsafe` code: the item keeps its
//! allocation through a thin pointer, and the length that pointer covers is
//! derived from `key_len + value_len`. Fields are private so that nothing
//! outside can make the two disagree: an item is built from its bytes here,
//! with its lengths checked, and the allocation is never resized.
//!
//! It also holds the prefetch hint that asks the caches for an item's
//! allocation before a lookup reads it ([`Item::prefetch`]).
//!
//! Must not: expose the pointer, change `key_len` or `value_len` after
//! construction, or truncate a length that does not fit its field.

use std::ptr::NonNull;

/// Marks an absent list link.
pub(super) const NIL: u32 = u32::MAX;
/// Expiry of an item that never expires.
pub(super) const NEVER: u32 = u32::MAX;

/// Item bit: read since the SIEVE hand last passed it.
pub(super) const VISITED: u8 = 1;
/// Item bit: read at least once since stored (the `*_unfetched` stats and
/// meta `h`).
pub(super) const FETCHED: u8 = 2;
/// Item bit: invalidated (meta delete or store with `I`), awaiting a
/// recache (memcached's `ITEM_STALE`, meta `X`).
pub(super) const STALE: u8 = 4;
/// Item bit: a client was handed the right to recache it (memcached's
/// `ITEM_TOKEN_SENT`, meta `W` then `Z`).
pub(super) const WIN_SENT: u8 = 8;

/// One stored item's metadata. Key and value share one heap allocation, so
/// an item costs a single allocation and a same-size overwrite reuses it.
/// The allocation is held by a thin pointer: its length is `key_len +
/// value_len`, already here, so the 8 bytes a `Box<[u8]>` spends on it are
/// saved on every item.
#[derive(Debug)]
pub(super) struct Item {
    /// Key followed by value: `key_len + value_len` bytes, owned, made by
    /// `Box::<[u8]>::into_raw` in `Item::new` and given back to
    /// `Box::from_raw` on drop.
    ptr: NonNull<u8>,
    /// Unique per store; see the partition's docs.
    cas: u64,
    /// Expiry in clock seconds (memcached's resolution); `NEVER` never.
    expires_at: u32,
    /// Client flags.
    flags: u32,
    /// Neighbour towards the head (newer), or `NIL`.
    newer: u32,
    /// Neighbour towards the tail (older), or `NIL`.
    older: u32,
    /// Bytes of the allocation that are the value.
    value_len: u32,
    /// Clock seconds of the last store or bumped read (memcached's
    /// `it->time`, meta `l`).
    atime: u32,
    /// The partition's flush epoch when stored: an item from an earlier
    /// epoch was flushed.
    epoch: u32,
    /// Bytes of the allocation that are the key.
    key_len: u16,
    /// `VISITED`, `FETCHED`, `STALE`, `WIN_SENT`.
    bits: u8,
}

// SAFETY: an Item owns its allocation exclusively, as a Box<[u8]> would;
// nothing else holds the pointer, so moving it to another thread is sound.
unsafe impl Send for Item {}

impl Drop for Item {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `Box::<[u8]>::into_raw` of exactly
        // `len()` bytes in `Item::new`; the lengths never change after, and
        // drop runs once.
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len(),
            ))
        });
    }
}

/// The bytes an item of this key and value needs, or None if either is
/// longer than the item's length fields hold (64 KiB - 1 of key, 4 GiB - 1
/// of value). Checked before anything is evicted or allocated, so an item
/// that can never be held costs nothing.
pub(super) fn data_len(key_len: usize, value_len: usize) -> Option<usize> {
    u16::try_from(key_len).ok()?;
    u32::try_from(value_len).ok()?;
    key_len.checked_add(value_len)
}

impl Item {
    /// An item holding `key` and the concatenation of `parts`, with CAS 0,
    /// flags 0, no expiry, no links, access time and epoch 0 and no bits;
    /// None if the lengths do not fit (see [`data_len`]).
    pub(super) fn new(key: &[u8], parts: &[&[u8]]) -> Option<Item> {
        let key_len = u16::try_from(key.len()).ok()?;
        let value_len = u32::try_from(parts.iter().map(|p| p.len()).sum::<usize>()).ok()?;
        let len = usize::from(key_len) + value_len as usize;
        let mut data = Vec::with_capacity(len);
        data.extend_from_slice(key);
        for p in parts {
            data.extend_from_slice(p);
        }
        // `Box::into_raw` never returns null (an empty slice gets a
        // dangling, non-null pointer, which `from_raw` takes back with
        // length 0), so the fallback is never taken; it keeps this safe.
        let raw = Box::into_raw(data.into_boxed_slice()) as *mut u8;
        let ptr = NonNull::new(raw)?;
        Some(Item {
            ptr,
            cas: 0,
            expires_at: NEVER,
            flags: 0,
            newer: NIL,
            older: NIL,
            value_len,
            atime: 0,
            epoch: 0,
            key_len,
            bits: 0,
        })
    }

    /// Asks for the first line of the allocation (the key, then the
    /// value) to be loaded into the caches; reads nothing.
    #[inline]
    pub(super) fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint to the processor: it never
        // faults and reads nothing into the program, whatever the address;
        // this one is the item's own allocation anyway.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.ptr.as_ptr().cast::<i8>());
        }
    }

    /// Bytes of the allocation: key and value.
    #[inline]
    pub(super) fn len(&self) -> usize {
        usize::from(self.key_len) + self.value_len as usize
    }

    #[inline]
    fn data(&self) -> &[u8] {
        // SAFETY: `ptr` owns `len()` initialised bytes (`Item::new`), which
        // live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }

    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        &self.data()[..usize::from(self.key_len)]
    }

    #[inline]
    pub(super) fn value(&self) -> &[u8] {
        &self.data()[usize::from(self.key_len)..]
    }

    /// The value's bytes, to overwrite in place (its length is fixed).
    #[inline]
    pub(super) fn value_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        let key_len = usize::from(self.key_len);
        // SAFETY: as in `data`, and `&mut self` makes the access exclusive.
        let data = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), len) };
        &mut data[key_len..]
    }

    /// Bytes of the value; fits 32 bits by construction.
    #[inline]
    pub(super) fn value_len(&self) -> u32 {
        self.value_len
    }

    #[inline]
    pub(super) fn cas(&self) -> u64 {
        self.cas
    }

    #[inline]
    pub(super) fn set_cas(&mut self, cas: u64) {
        self.cas = cas;
    }

    #[inline]
    pub(super) fn expires_at(&self) -> u32 {
        self.expires_at
    }

    /// Only the partition's `set_deadline` calls this, which keeps its count
    /// of items with a deadline exact.
    #[inline]
    pub(super) fn set_expires_at(&mut self, expires_at: u32) {
        self.expires_at = expires_at;
    }

    #[inline]
    pub(super) fn flags(&self) -> u32 {
        self.flags
    }

    #[inline]
    pub(super) fn set_flags(&mut self, flags: u32) {
        self.flags = flags;
    }

    #[inline]
    pub(super) fn newer(&self) -> u32 {
        self.newer
    }

    #[inline]
    pub(super) fn set_newer(&mut self, newer: u32) {
        self.newer = newer;
    }

    #[inline]
    pub(super) fn older(&self) -> u32 {
        self.older
    }

    #[inline]
    pub(super) fn set_older(&mut self, older: u32) {
        self.older = older;
    }

    #[inline]
    pub(super) fn atime(&self) -> u32 {
        self.atime
    }

    #[inline]
    pub(super) fn set_atime(&mut self, atime: u32) {
        self.atime = atime;
    }

    #[inline]
    pub(super) fn epoch(&self) -> u32 {
        self.epoch
    }

    #[inline]
    pub(super) fn set_epoch(&mut self, epoch: u32) {
        self.epoch = epoch;
    }

    /// Whether any of `bits` is set.
    #[inline]
    pub(super) fn has(&self, bits: u8) -> bool {
        self.bits & bits != 0
    }

    /// Those of `mask`'s bits that are set.
    #[inline]
    pub(super) fn bits(&self, mask: u8) -> u8 {
        self.bits & mask
    }

    #[inline]
    pub(super) fn set_bits(&mut self, bits: u8) {
        self.bits |= bits;
    }

    #[inline]
    pub(super) fn clear_bits(&mut self, bits: u8) {
        self.bits &= !bits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_share_one_allocation() {
        let mut item = Item::new(b"key", &[b"val", b"ue"]).expect("fits");
        assert_eq!(item.key(), b"key");
        assert_eq!(item.value(), b"value");
        assert_eq!(item.len(), 8);
        item.value_mut().copy_from_slice(b"VALUE");
        assert_eq!(item.value(), b"VALUE");
        assert_eq!(item.key(), b"key");
        let empty = Item::new(b"", &[]).expect("fits");
        assert_eq!(empty.len(), 0);
        assert!(empty.value().is_empty());
    }

    #[test]
    fn lengths_that_do_not_fit_their_fields_are_refused() {
        let key = vec![b'k'; usize::from(u16::MAX)];
        assert!(Item::new(&key, &[b"v"]).is_some());
        let key = vec![b'k'; usize::from(u16::MAX) + 1];
        assert!(Item::new(&key, &[b"v"]).is_none());
        assert_eq!(data_len(3, u32::MAX as usize), Some(3 + u32::MAX as usize));
        assert_eq!(data_len(3, u32::MAX as usize + 1), None);
        assert_eq!(data_len(usize::from(u16::MAX) + 1, 0), None);
    }

    #[test]
    fn item_metadata_is_48_bytes_even_in_a_slab_slot() {
        assert_eq!(std::mem::size_of::<Item>(), 48);
        // The slab's vacant link fits the pointer's niche.
        assert_eq!(std::mem::size_of::<Result<Item, usize>>(), 48);
    }

    #[test]
    fn bits_set_and_clear() {
        let mut item = Item::new(b"k", &[]).expect("fits");
        assert!(!item.has(VISITED | FETCHED | STALE | WIN_SENT));
        item.set_bits(VISITED | FETCHED | STALE | WIN_SENT);
        item.clear_bits(VISITED | WIN_SENT);
        assert!(!item.has(VISITED));
        assert!(!item.has(WIN_SENT));
        assert!(item.has(FETCHED));
        assert!(item.has(STALE));
    }
}
