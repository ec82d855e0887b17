//! The protocol-neutral vocabulary shared by every layer: what a client asks
//! of the key space ([`Command`]) and what the owning partition answers
//! ([`Outcome`]).
//!
//! Protocol codecs translate wire frames into these types and back; storage
//! executes them; the server moves them between workers. This module must not
//! know any wire format, socket or thread.

/// What a keyed command does. The scalars live here; the key and value bytes
/// travel beside them, borrowed ([`Command`]) or in one owned buffer
/// ([`OwnedCommand`]) when a command crosses to another worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Look the key up.
    Get,
    /// Store the value under the key, replacing any previous item.
    Set {
        /// Opaque client flags stored with the value and returned on a hit.
        flags: u32,
        /// Time to live in seconds, relative to now; 0 means the item never
        /// expires.
        ttl: u32,
    },
    /// Remove the key.
    Delete,
}

/// A keyed command with its bytes borrowed from a connection's read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// What to do.
    pub op: Op,
    /// The key; never empty once a codec has accepted it.
    pub key: &'a [u8],
    /// The value for stores, empty otherwise.
    pub value: &'a [u8],
}

impl<'a> Command<'a> {
    /// Copies key and value into one buffer so the command can cross threads
    /// with a single allocation.
    pub fn to_owned_command(&self) -> OwnedCommand {
        let mut buf = Vec::with_capacity(self.key.len() + self.value.len());
        buf.extend_from_slice(self.key);
        buf.extend_from_slice(self.value);
        OwnedCommand {
            op: self.op,
            key_len: self.key.len(),
            buf,
        }
    }
}

/// A keyed command that owns its bytes: `buf` holds the key then the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedCommand {
    /// What to do.
    pub op: Op,
    /// How many leading bytes of `buf` are the key.
    pub key_len: usize,
    /// Key followed by value.
    pub buf: Vec<u8>,
}

impl OwnedCommand {
    /// Borrows the command back into its protocol-neutral form.
    pub fn as_command(&self) -> Command<'_> {
        let (key, value) = self.buf.split_at(self.key_len.min(self.buf.len()));
        Command {
            op: self.op,
            key,
            value,
        }
    }

    /// Gives the buffer back for reuse, so that a reply crossing back to the
    /// origin worker needs no allocation of its own.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

/// What the owning partition answered. `V` is `&[u8]` when the reply is
/// encoded in place on the owning worker (no copy, no allocation) and
/// `Vec<u8>` when it must travel to another worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<V> {
    /// A GET found a live item.
    Hit {
        /// The flags stored with the value.
        flags: u32,
        /// The stored value.
        value: V,
    },
    /// A GET found nothing (or only an expired item).
    Miss,
    /// A SET stored its value.
    Stored,
    /// A DELETE removed an item.
    Deleted,
    /// A DELETE found nothing to remove.
    NotFound,
}

impl Outcome<&[u8]> {
    /// Copies the outcome into `buf` (cleared first, capacity reused) so it
    /// can travel to another worker.
    pub fn to_owned_in(&self, mut buf: Vec<u8>) -> Outcome<Vec<u8>> {
        match *self {
            Outcome::Hit { flags, value } => {
                buf.clear();
                buf.extend_from_slice(value);
                Outcome::Hit { flags, value: buf }
            }
            Outcome::Miss => Outcome::Miss,
            Outcome::Stored => Outcome::Stored,
            Outcome::Deleted => Outcome::Deleted,
            Outcome::NotFound => Outcome::NotFound,
        }
    }
}

impl Outcome<Vec<u8>> {
    /// Borrows an owned outcome so one encoder serves both paths.
    pub fn as_borrowed(&self) -> Outcome<&[u8]> {
        match self {
            Outcome::Hit { flags, value } => Outcome::Hit {
                flags: *flags,
                value: value.as_slice(),
            },
            Outcome::Miss => Outcome::Miss,
            Outcome::Stored => Outcome::Stored,
            Outcome::Deleted => Outcome::Deleted,
            Outcome::NotFound => Outcome::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_command_round_trips_key_and_value() {
        let cmd = Command {
            op: Op::Set { flags: 7, ttl: 9 },
            key: b"key",
            value: b"value",
        };
        let owned = cmd.to_owned_command();
        assert_eq!(owned.as_command(), cmd);
    }

    #[test]
    fn outcome_to_owned_reuses_buffer() {
        let buf = Vec::with_capacity(64);
        let ptr = buf.as_ptr();
        let owned = Outcome::Hit {
            flags: 1,
            value: &b"abc"[..],
        }
        .to_owned_in(buf);
        match &owned {
            Outcome::Hit { value, .. } => assert_eq!(value.as_ptr(), ptr),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            owned.as_borrowed(),
            Outcome::Hit {
                flags: 1,
                value: &b"abc"[..]
            }
        );
    }
}
