//! Fair service of the commands other workers forward to this one.
//!
//! Commands arrive in one channel per worker, in arrival order across all
//! the clients of all the other workers. While the worker keeps up (it
//! runs everything waiting within its turn's inbox budget), it runs them
//! in that order and this queue stays empty. Once it falls behind, the
//! commands left over wait here, one queue per client connection, and are
//! run round-robin: a client whose worker forwarded a thousand expensive
//! commands (APPENDs to a 1 MiB item) gets one turn in each round like a
//! client that forwarded one GET, instead of the GET waiting behind all of
//! them. Each connection's own commands keep their order; commands of
//! different connections never had one.
//!
//! Must not: reorder one connection's commands, run anything itself, or
//! keep more than a few empty queues once a crowd of connections is gone.

use std::collections::VecDeque;

use hashbrown::HashMap;

use crate::command::OwnedCommand;

use super::mailbox::ReplyTo;

/// A command forwarded for execution here, with where its reply goes.
#[derive(Debug)]
pub(crate) struct Forwarded {
    pub reply_to: ReplyTo,
    pub cmd: OwnedCommand,
    pub reply_cap: usize,
}

/// The client connection a command came from: its worker, slot and
/// generation (a reused slot is another client).
type Origin = (u32, usize, u32);

fn origin(reply_to: &ReplyTo) -> Origin {
    (reply_to.worker, reply_to.conn, reply_to.generation)
}

/// Empty per-connection queues kept for reuse beyond those in use, so a
/// steady set of clients does not allocate, and a crowd's are dropped.
const SPARE_QUEUES: usize = 64;

/// The commands waiting, by connection, and the round-robin order.
#[derive(Debug, Default)]
pub(crate) struct FairQueue {
    queues: HashMap<Origin, VecDeque<Forwarded>>,
    /// Connections with commands waiting, in serving order; each appears
    /// once.
    ring: VecDeque<Origin>,
    waiting: usize,
}

impl FairQueue {
    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// Whether a command from this connection must wait here rather than
    /// run now: its earlier commands are waiting.
    pub fn holds(&self, reply_to: &ReplyTo) -> bool {
        // The common case, a worker that keeps up, costs no hashing.
        self.waiting > 0
            && self
                .queues
                .get(&origin(reply_to))
                .is_some_and(|q| !q.is_empty())
    }

    /// Queues a command behind its connection's earlier ones.
    pub fn push(&mut self, f: Forwarded) {
        let key = origin(&f.reply_to);
        let queue = self.queues.entry(key).or_default();
        if queue.is_empty() {
            self.ring.push_back(key);
        }
        queue.push_back(f);
        self.waiting += 1;
    }

    /// The next command in round-robin order: the oldest of the
    /// connection whose turn it is.
    pub fn pop(&mut self) -> Option<Forwarded> {
        let key = self.ring.pop_front()?;
        let queue = self.queues.get_mut(&key)?;
        let next = queue.pop_front();
        if queue.is_empty() {
            if self.queues.len() > self.ring.len() + SPARE_QUEUES {
                self.queues.retain(|_, q| !q.is_empty());
            }
        } else {
            self.ring.push_back(key);
        }
        if next.is_some() {
            self.waiting -= 1;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Op;

    fn cmd(worker: u32, conn: usize, seq: u64) -> Forwarded {
        Forwarded {
            reply_to: ReplyTo {
                worker,
                conn,
                generation: 1,
                seq,
            },
            cmd: OwnedCommand {
                op: Op::Get,
                key_len: 1,
                buf: b"k".to_vec(),
            },
            reply_cap: 0,
        }
    }

    fn order(q: &mut FairQueue) -> Vec<(usize, u64)> {
        std::iter::from_fn(|| q.pop())
            .map(|f| (f.reply_to.conn, f.reply_to.seq))
            .collect()
    }

    #[test]
    fn connections_take_turns_and_keep_their_own_order() {
        let mut q = FairQueue::default();
        for seq in 0..4 {
            q.push(cmd(0, 7, seq));
        }
        q.push(cmd(0, 9, 0));
        q.push(cmd(1, 7, 0));
        q.push(cmd(0, 9, 1));
        assert_eq!(q.waiting, 7);
        assert!(q.holds(&cmd(0, 7, 4).reply_to));
        assert!(!q.holds(&cmd(0, 8, 0).reply_to));
        // Worker 1's connection 7 is another client than worker 0's.
        let got = order(&mut q);
        assert_eq!(
            got,
            vec![(7, 0), (9, 0), (7, 0), (7, 1), (9, 1), (7, 2), (7, 3)]
        );
        assert!(q.is_empty());
        assert!(!q.holds(&cmd(0, 7, 5).reply_to));
    }

    #[test]
    fn a_crowd_of_connections_leaves_few_queues_behind() {
        let mut q = FairQueue::default();
        for conn in 0..1000 {
            q.push(cmd(0, conn, 0));
        }
        assert_eq!(order(&mut q).len(), 1000);
        assert!(
            q.queues.len() <= SPARE_QUEUES + 1,
            "{} queues kept",
            q.queues.len()
        );
    }
}
