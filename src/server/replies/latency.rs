//! Where each request's replies end in the connection's output, so that
//! its latency is counted once, when its last reply byte is written: a
//! request whose last reply waits in the queue is marked by the slot after
//! it, and moves to a position in the output stream when that slot is
//! released.
//!
//! Must not: know slots or buffers beyond sequence numbers and stream
//! positions, or read the clock (times are passed in).

use std::collections::VecDeque;
use std::time::Instant;

use crate::metrics::CommandClass;

use super::KEEP_CAPACITY;

/// A request waiting for its replies to be written, for its latency.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// A slot sequence number (queued) or an output stream position
    /// (written), by the queue it is in.
    end: u64,
    class: CommandClass,
    read_at: Instant,
}

/// A connection's requests waiting to be timed.
#[derive(Debug, Default)]
pub(super) struct Marks {
    /// Bytes ever appended to the output, and ever written from it:
    /// positions in the connection's output stream.
    out_total: u64,
    written_total: u64,
    /// Requests whose last reply is still in the queue: done once the slot
    /// before `end` has been released.
    queued: VecDeque<Mark>,
    /// Requests whose replies are all in the output: done once the stream
    /// position `end` has been written.
    written: VecDeque<Mark>,
}

impl Marks {
    /// `n` reply bytes were appended to the output.
    pub fn appended(&mut self, n: usize) {
        self.out_total += n as u64;
    }

    /// `n` bytes of the output were written.
    pub fn wrote(&mut self, n: usize) {
        self.written_total += n as u64;
    }

    /// A request read at `read_at` has pushed all its replies: into the
    /// output, or, with `queued_before` (the next slot's sequence number),
    /// into the queue ahead of that slot.
    pub fn mark(&mut self, queued_before: Option<u64>, class: CommandClass, read_at: Instant) {
        let (queue, end) = match queued_before {
            Some(seq) => (&mut self.queued, seq),
            None => (&mut self.written, self.out_total),
        };
        queue.push_back(Mark {
            end,
            class,
            read_at,
        });
    }

    /// Every slot before `base_seq` was released into the output: the
    /// requests they ended are now marked by where the output ends.
    pub fn released(&mut self, base_seq: u64) {
        while let Some(mark) = self.queued.front() {
            if mark.end > base_seq {
                break;
            }
            let mut mark = *mark;
            mark.end = self.out_total;
            self.written.push_back(mark);
            self.queued.pop_front();
        }
        release_if_grown(&mut self.queued);
    }

    /// Calls `record` with each request whose replies have all been
    /// written since the last call, and its latency in nanoseconds.
    pub fn take_written(&mut self, now: Instant, mut record: impl FnMut(CommandClass, u64)) {
        while let Some(mark) = self.written.front() {
            if mark.end > self.written_total {
                break;
            }
            record(mark.class, nanos(now, mark.read_at));
            self.written.pop_front();
        }
        release_if_grown(&mut self.written);
    }

    /// Whether a request whose replies are all in the output waits to be
    /// counted.
    pub fn any_written(&self) -> bool {
        !self.written.is_empty()
    }

    /// Bytes the marks hold, as allocated: a client that pipelines
    /// `noreply` requests without reading adds one each.
    pub fn memory(&self) -> usize {
        (self.queued.capacity() + self.written.capacity()) * std::mem::size_of::<Mark>()
    }
}

/// Releases an empty queue of marks that grew past [`KEEP_CAPACITY`].
fn release_if_grown(marks: &mut VecDeque<Mark>) {
    if marks.is_empty() && marks.capacity() * std::mem::size_of::<Mark>() > KEEP_CAPACITY {
        *marks = VecDeque::new();
    }
}

/// Nanoseconds from `since` to `now` (0 if the clock disagrees).
pub(super) fn nanos(now: Instant, since: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(since).as_nanos()).unwrap_or(u64::MAX)
}
