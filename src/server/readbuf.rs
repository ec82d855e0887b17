//! The input a connection holds between reads: the bytes of a frame that
//! has not fully arrived, or complete frames left over when the connection
//! yielded its turn.
//!
//! Most reads hold a whole number of requests: those are read into the
//! worker's shared scratch buffer and handled straight from it, so a
//! connection holds no input buffer at all between requests. Only what is
//! left when a read ends mid-frame (or mid-turn) is copied here, into an
//! allocation sized to what arrived; once the frame completes the buffer
//! is freed.
//!
//! Must not: allocate for bytes that have not arrived (a length the peer
//! merely claims), or keep an allocation once it is empty.

/// Below this, a buffer's spare room is not worth a reallocation to trim.
const TRIM_SLACK: usize = 4 * 1024;

/// Held input: `buf[start..end]` is received, unprocessed. The vector is
/// kept initialised to its full length so that a read can go straight into
/// its spare room without unsafe code.
#[derive(Debug, Default)]
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes allocated: what the connection's memory budget counts.
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// The held bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops the first `n` held bytes; an emptied buffer is freed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            *self = ReadBuf::default();
        }
    }

    /// Drops everything held and frees the buffer.
    pub fn clear(&mut self) {
        *self = ReadBuf::default();
    }

    /// Appends `bytes`, growing the allocation to exactly what is held.
    pub fn extend(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.make_room(bytes.len(), self.len() + bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Room to read up to `want` more bytes of a frame straight into the
    /// buffer, growing it to at most `cap` bytes held. The caller bounds
    /// `cap` by what has arrived, so a claimed length is never allocated.
    pub fn spare(&mut self, want: usize, cap: usize) -> &mut [u8] {
        let target = cap.max(self.len() + 1).min(self.len() + want.max(1));
        self.make_room(target - self.len(), target);
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`ReadBuf::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Moves the held bytes to the front and, when the allocation is much
    /// larger than what is held (a leftover after a turn's frames were
    /// handled), shrinks it to fit.
    pub fn trim(&mut self) {
        if self.is_empty() {
            *self = ReadBuf::default();
            return;
        }
        if self.buf.len() - self.len() > TRIM_SLACK.max(self.len()) {
            let held = self.data().to_vec();
            self.buf = held;
            self.start = 0;
            self.end = self.buf.len();
        }
    }

    /// Makes room for `extra` bytes after the held ones, in an allocation
    /// of at least `size` bytes (never more than `size` when it grows).
    fn make_room(&mut self, extra: usize, size: usize) {
        if self.end + extra <= self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end + extra > self.buf.len() {
            let size = size.max(self.end + extra);
            self.buf.reserve_exact(size - self.buf.len());
            self.buf.resize(size, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_what_arrived_and_frees_when_empty() {
        let mut rb = ReadBuf::default();
        assert_eq!(rb.allocated(), 0);
        rb.extend(b"get ");
        assert_eq!(rb.data(), b"get ");
        assert!(rb.allocated() >= 4 && rb.allocated() < 64);
        rb.extend(b"key");
        assert_eq!(rb.data(), b"get key");
        rb.consume(4);
        assert_eq!(rb.data(), b"key");
        rb.consume(3);
        assert_eq!(rb.allocated(), 0, "an emptied buffer is freed");
    }

    #[test]
    fn spare_grows_only_to_the_cap_given() {
        let mut rb = ReadBuf::default();
        rb.extend(&[1; 100]);
        // A frame claims 10 MiB; the caller allows twice what arrived.
        let room = rb.spare(10 << 20, 200).len();
        assert_eq!(room, 100);
        rb.filled(room);
        assert_eq!(rb.len(), 200);
        assert_eq!(rb.allocated(), 200);
        // Never less than one byte of room, so a read can make progress.
        assert_eq!(rb.spare(10, 0).len(), 1);
    }

    #[test]
    fn trim_shrinks_a_leftover() {
        let mut rb = ReadBuf::default();
        rb.extend(&[7; 64 * 1024]);
        rb.consume(64 * 1024 - 10);
        rb.trim();
        assert_eq!(rb.data(), &[7; 10]);
        assert_eq!(rb.allocated(), 10);
    }
}
