//! The ordered replies over a plain encoder that makes order visible:
//! local and remote replies, server-wide ones, echoes, deferral, latency
//! marks, compaction and partial writes.

use super::*;

/// Encodes an outcome as its value bytes (or `-` for anything else), and
/// stats as `S<cmd_get>`, so order is visible in the output.
struct Plain;

impl Encode for Plain {
    fn outcome(&self, _: ReplyCtx, echo: Echo<'_>, outcome: &Outcome<&[u8]>, out: &mut Vec<u8>) {
        out.extend_from_slice(echo.key);
        out.extend_from_slice(echo.extra);
        match outcome {
            Outcome::Hit { value, .. } => out.extend_from_slice(value),
            _ => out.push(b'-'),
        }
    }
    fn applied(&self, _: ReplyCtx, _: Broadcast, parts: &[(u32, WorkerStats)], out: &mut Vec<u8>) {
        let sum: u64 = parts.iter().map(|(_, s)| s.cmd_get).sum();
        out.extend_from_slice(format!("S{sum}").as_bytes());
    }
}

fn hit(v: &[u8]) -> Outcome<Vec<u8>> {
    Outcome::Hit {
        flags: 0,
        cas: 1,
        value: v.to_vec(),
    }
}

/// Fills slot `seq` with a hit on `value`, timing nothing.
fn fill(r: &mut Replies, seq: u64, value: &[u8]) -> bool {
    r.fill_remote(
        seq,
        hit(value),
        &Plain,
        Instant::now(),
        &mut Histogram::default(),
    )
}

#[test]
fn local_replies_go_straight_out() {
    let mut r = Replies::default();
    r.push_ready(|o| o.push(b'a'));
    r.push_ready(|o| o.push(b'b'));
    assert_eq!(r.owed(), 0);
    assert_eq!(r.unsent(), b"ab");
}

#[test]
fn remote_replies_hold_back_later_local_ones() {
    let mut r = Replies::default();
    r.push_ready(|o| o.push(b'a'));
    let s1 = r.push_remote(ReplyCtx::ANY, 100, Echo::NONE, Instant::now());
    r.push_ready(|o| o.push(b'c'));
    let s3 = r.push_remote(ReplyCtx::ANY, 100, Echo::NONE, Instant::now());
    r.push_ready(|o| o.push(b'e'));
    assert_eq!(r.unsent(), b"a");
    assert_eq!(r.remote_bytes(), 200);
    // The later remote reply arrives first: still held back, but its
    // bytes count as buffered.
    assert!(fill(&mut r, s3, b"d"));
    assert_eq!(r.unsent(), b"a");
    assert_eq!(r.remote_bytes(), 101);
    assert_eq!(r.buffered_bytes(), 1 + 1 + 1 + 1);
    assert!(fill(&mut r, s1, b"b"));
    assert_eq!(r.unsent(), b"abcde");
    assert_eq!(r.remote_bytes(), 0);
    assert_eq!(r.buffered_bytes(), 5);
    assert_eq!(r.owed(), 0);
    // Sequence numbers keep counting, so a duplicate is refused.
    assert!(!fill(&mut r, s1, b"x"));
    r.advance(5);
    assert!(r.is_idle());
}

#[test]
fn stats_wait_for_every_worker() {
    let mut r = Replies::default();
    let own = WorkerStats {
        cmd_get: 1,
        ..Default::default()
    };
    let seq = r.push_gather(
        ReplyCtx::ANY,
        Broadcast::Stats(crate::command::StatsGroup::General),
        2,
        (0, own),
    );
    r.push_ready(|o| o.push(b'n'));
    let part = WorkerStats {
        cmd_get: 10,
        ..Default::default()
    };
    assert!(r.fill_gather(seq, 1, &part, &Plain));
    assert_eq!(r.unsent(), b"");
    assert!(r.fill_gather(seq, 2, &part, &Plain));
    assert_eq!(r.unsent(), b"S21n");
    assert!(!r.fill_gather(seq, 3, &part, &Plain));
}

#[test]
fn remote_replies_echo_their_keys() {
    let mut r = Replies::default();
    let s1 = r.push_remote(ReplyCtx::ANY, 0, Echo::key(b"k1:"), Instant::now());
    let echo = Echo {
        key: b"key2",
        extra: b":",
    };
    let s2 = r.push_remote(ReplyCtx::ANY, 0, echo, Instant::now());
    assert!(fill(&mut r, s2, b"b"));
    assert!(fill(&mut r, s1, b"a"));
    assert_eq!(r.unsent(), b"k1:akey2:b");
    assert!(r.echoes.is_empty(), "the arena empties with the queue");
}

#[test]
fn a_deferred_command_waits_for_room_and_keeps_its_place() {
    let mut r = Replies::default();
    let cmd = crate::command::Command {
        op: crate::command::Op::Get,
        key: b"k",
        value: &[],
    };
    let s1 = r.push_remote(ReplyCtx::ANY, 50, Echo::NONE, Instant::now());
    r.push_ready(|o| o.push(b'z'));
    assert!(r.defer(s1, cmd.to_owned_command(), 5000));
    assert!(r.has_deferred());
    assert!(!r.defer(s1, cmd.to_owned_command(), 5000), "not in flight");
    // No room yet: the command stays.
    r.retry_deferred(|_, _, cmd, _| Err(cmd));
    assert!(r.has_deferred());
    let mut sent = Vec::new();
    r.retry_deferred(|seq, front, _, len| {
        sent.push((seq, front, len));
        Ok(len + 10)
    });
    assert_eq!(sent, [(s1, true, 5000)]);
    assert!(!r.has_deferred());
    assert_eq!(r.remote_bytes(), 5010);
    let mut wait = Histogram::default();
    assert!(r.fill_remote(s1, hit(b"v"), &Plain, Instant::now(), &mut wait));
    assert_eq!(wait.count(), 1, "a deferred request waits once");
    assert_eq!(r.unsent(), b"vz");
}

#[test]
fn a_request_is_counted_once_its_last_reply_is_written() {
    let mut r = Replies::default();
    let read_at = Instant::now();
    let mut seen = Vec::new();
    // A local request: counted once its bytes are written, not before.
    r.push_ready(|o| o.extend_from_slice(b"ab"));
    r.mark_request(CommandClass::Set, read_at);
    r.take_written(Instant::now(), |c, _| seen.push(c));
    assert!(seen.is_empty());
    r.advance(1);
    r.take_written(Instant::now(), |c, _| seen.push(c));
    assert!(seen.is_empty(), "half written");
    r.advance(1);
    r.take_written(Instant::now(), |c, _| seen.push(c));
    assert_eq!(seen, [CommandClass::Set]);
    // A request whose reply another worker owes, and a local one
    // behind it: neither counts until the remote reply is released and
    // both are written.
    let seq = r.push_remote(ReplyCtx::ANY, 0, Echo::NONE, read_at);
    r.mark_request(CommandClass::Get, read_at);
    r.push_ready(|o| o.push(b'c'));
    r.mark_request(CommandClass::Other, read_at);
    let mut wait = Histogram::default();
    assert!(r.fill_remote(seq, hit(b"v"), &Plain, Instant::now(), &mut wait));
    assert_eq!(wait.count(), 1);
    r.take_written(Instant::now(), |c, _| seen.push(c));
    assert_eq!(seen.len(), 1);
    let n = r.unsent().len();
    r.advance(n);
    r.take_written(Instant::now(), |c, _| seen.push(c));
    assert_eq!(
        seen,
        [CommandClass::Set, CommandClass::Get, CommandClass::Other]
    );
    assert!(!r.has_marks());
}

#[test]
fn replies_staged_behind_a_waiting_one_count_as_stuck_and_are_compacted() {
    let mut r = Replies::default();
    let big = vec![b'x'; 2 * KEEP_CAPACITY];
    let s1 = r.push_remote(ReplyCtx::ANY, 0, Echo::NONE, Instant::now());
    r.push_ready(|o| o.extend_from_slice(&big));
    let s2 = r.push_remote(ReplyCtx::ANY, 0, Echo::NONE, Instant::now());
    r.push_ready(|o| o.extend_from_slice(b"tail"));
    // Only the front's reply can let the staged ones out.
    assert!(r.stuck_bytes() >= big.len() + 4);
    // The front and the large reply behind it leave; the second remote
    // still waits, so the queue is not empty, but the staged buffer
    // keeps only what is left of it.
    assert!(fill(&mut r, s1, b"a"));
    assert_eq!((r.staged_taken, r.staged.len()), (0, 4));
    assert!(fill(&mut r, s2, b"b"));
    let mut expected = b"a".to_vec();
    expected.extend_from_slice(&big);
    expected.extend_from_slice(b"btail");
    assert_eq!(r.unsent(), &expected[..]);
    assert_eq!(r.owed(), 0);
}

#[test]
fn partial_writes_advance() {
    let mut r = Replies::default();
    r.push_ready(|o| o.extend_from_slice(b"hello"));
    r.advance(2);
    assert_eq!(r.unsent(), b"llo");
    assert!(!r.is_idle());
    r.advance(3);
    assert!(r.is_idle());
}

#[test]
fn small_output_waits_for_a_reply_in_flight_but_not_for_a_deferred_one() {
    let mut r = Replies::default();
    r.push_ready(|o| o.push(b'a'));
    assert!(!r.hold_output(), "nothing owed");
    let s1 = r.push_remote(ReplyCtx::ANY, 100, Echo::NONE, Instant::now());
    assert!(r.hold_output());
    let get = crate::command::Command {
        op: crate::command::Op::Get,
        key: b"k",
        value: &[],
    };
    assert!(r.defer(s1, get.to_owned_command(), 10));
    assert!(
        !r.hold_output(),
        "a deferred front may need the output read"
    );
}

#[test]
fn large_output_goes_out_while_a_reply_is_in_flight() {
    let mut r = Replies::default();
    r.push_ready(|o| o.resize(HOLD_OUTPUT_MAX, b'a'));
    r.push_remote(ReplyCtx::ANY, 100, Echo::NONE, Instant::now());
    assert!(!r.hold_output());
}
