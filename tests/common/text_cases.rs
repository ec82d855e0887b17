//! memcached text and meta requests as byte vectors, each with the answer
//! `cafe::protocol::text::decode_request` must give: the request (in
//! [`show`]'s words) or memcached's error line. `text_codec.rs` decodes
//! them at every split point; `text_conformance.rs` sends them to a real
//! memcached, which must answer the same.

use cafe::protocol::text::{Limits, MetaFlags, Request};

/// Limits for the table: memcached's key limit, a small value limit so
/// that "too large" needs only a small body.
pub const LIMITS: Limits = Limits {
    max_key_len: 250,
    max_value_len: 1024,
};

/// A value length over [`LIMITS`].
pub const OVER: usize = 2000;

/// What decoding a case must give. Unless said otherwise the answer covers
/// the whole input: `consumed` or `skip` is its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A request, as [`show`] writes it.
    Frame(&'static str),
    /// A refusal: memcached's reply line and whether `noreply` hides it.
    Refused(&'static [u8], bool),
    /// A refusal whose `skip` runs past the input (the data block was not
    /// sent).
    RefusedSkip(&'static [u8], bool, u64),
    /// The stream cannot go on.
    Fatal,
}

/// Whether a real memcached 1.6.18 answers the case as the codec does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Yes: `text_conformance.rs` sends it.
    Memcached,
    /// No, by design (the case says why); or it would stop the server.
    Deliberate(&'static str),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub input: Vec<u8>,
    pub want: Want,
    pub check: Check,
}

const ERROR: &[u8] = b"ERROR\r\n";
const FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
const EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument\r\n";
const DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
const USAGE: &[u8] = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
const CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
const LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
const SHUTDOWN: &[u8] = b"CLIENT_ERROR invalid shutdown mode\r\n";
const GET_FLAGS_LONG: &[u8] = b"CLIENT_ERROR options flags are too long\r\n";
const FLAGS_LONG: &[u8] = b"CLIENT_ERROR options flags too long\r\n";
const TOKEN: &[u8] = b"CLIENT_ERROR bad token in command line format\r\n";
const INVALID: &[u8] = b"CLIENT_ERROR invalid flag\r\n";
const DUPLICATE: &[u8] = b"CLIENT_ERROR duplicate flag\r\n";
const INVALID_OR_DUP: &[u8] = b"CLIENT_ERROR invalid or duplicate flag\r\n";
const DECODING: &[u8] = b"CLIENT_ERROR error decoding key\r\n";
const OPAQUE: &[u8] = b"CLIENT_ERROR opaque token too long\r\n";
const M_LENGTH: &[u8] = b"CLIENT_ERROR incorrect length for M token\r\n";
const MS_MODE: &[u8] = b"CLIENT_ERROR invalid mode for ms M token\r\n";
const MA_MODE: &[u8] = b"CLIENT_ERROR invalid mode for ma M token\r\n";
const INITIAL: &[u8] = b"CLIENT_ERROR invalid numeric initial value\r\n";
const DELTA_VALUE: &[u8] = b"CLIENT_ERROR invalid numeric delta value\r\n";

/// The table. Keys named `long` are 251 bytes, one over the limit; `max`
/// is 250.
pub fn cases() -> Vec<Case> {
    let long = "k".repeat(251);
    let max = "m".repeat(250);
    let o32 = format!("O{}", "o".repeat(32));
    let o31 = format!("O{}", "o".repeat(31));
    let many = |flag: &str, n: usize| vec![flag; n].join(" ");
    let mut out = Vec::new();
    let mut add = |input: &[u8], want: Want, check: Check| {
        out.push(Case {
            input: input.to_vec(),
            want,
            check,
        })
    };
    use Check::{Deliberate, Memcached as M};
    use Want::{Fatal, Frame, Refused, RefusedSkip};
    let refused = |reply| Refused(reply, false);
    let quiet = |reply| Refused(reply, true);
    let s = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    let b = |text: String| text.into_bytes();

    // Reads.
    add(b"get a\r\n", Frame("Get 0 [a]"), M);
    add(b"get a b  c\n", Frame("Get 0 [a,b,c]"), M);
    add(b"  get   a  \r\n", Frame("Get 0 [a]"), M);
    add(b"gets a\r\n", Frame("Gets 0 [a]"), M);
    add(b"gat 10 a b\r\n", Frame("Gat 10 [a,b]"), M);
    add(b"gats -1 a\r\n", Frame("Gats -1 [a]"), M);
    add(b"gat 10\r\n", Frame("Gat 10 []"), M);
    add(b"gat 4294967297 a\r\n", Frame("Gat 1 [a]"), M);
    add(b"bget a\r\n", Frame("Get 0 [a]"), M);
    add(b"get a\r\r\n", Frame("Get 0 [a\\r]"), M);
    add(b"get a\0b c\r\n", Frame("Get 0 [a]"), M);
    add(b"get a\tb\r\n", Frame("Get 0 [a\\tb]"), M);
    add(
        &b(format!("get {max}\r\n")),
        Frame(s(format!("Get 0 [{max}]"))),
        M,
    );
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    add(
        &b(format!("get {}\r\n", keys.join(" "))),
        Frame(s(format!("Get 0 [{}]", keys.join(",")))),
        M,
    );
    add(b"get\r\n", refused(ERROR), M);
    add(b"gets\r\n", refused(ERROR), M);
    add(b"gat\r\n", refused(ERROR), M);
    add(b"get\ta\r\n", refused(ERROR), M);
    add(b"GET a\r\n", refused(ERROR), M);
    add(b"gett a\r\n", refused(ERROR), M);
    add(&b(format!("get {long}\r\n")), refused(FORMAT), M);
    add(&b(format!("get a {long} b\r\n")), refused(FORMAT), M);
    add(&b(format!("gat 10 {long}\r\n")), refused(FORMAT), M);
    add(b"gat abc a\r\n", refused(EXPTIME), M);
    add(b"gats 1x a\r\n", refused(EXPTIME), M);

    // Stores.
    add(
        b"set k 5 100 3\r\nabc\r\n",
        Frame("Set k 5 100 0 false abc"),
        M,
    );
    add(
        b"set k 5 100 3 noreply\r\nabc\r\n",
        Frame("Set k 5 100 0 true abc"),
        M,
    );
    add(
        b"set k 0 0 1 junk\r\nx\r\n",
        Frame("Set k 0 0 0 false x"),
        M,
    );
    add(b"set k 0 0 1\nx\r\n", Frame("Set k 0 0 0 false x"), M);
    add(
        b"set k 0 0 4\r\na\r\nb\r\n",
        Frame("Set k 0 0 0 false a\\r\\nb"),
        M,
    );
    add(b"add k 0 0 0\r\n\r\n", Frame("Add k 0 0 0 false "), M);
    add(
        b"replace k 1 -1 1\r\nx\r\n",
        Frame("Replace k 1 -1 0 false x"),
        M,
    );
    add(
        b"append k 0 0 1\r\nx\r\n",
        Frame("Append k 0 0 0 false x"),
        M,
    );
    add(
        b"prepend k 0 0 1 noreply\r\nx\r\n",
        Frame("Prepend k 0 0 0 true x"),
        M,
    );
    add(
        b"cas k 1 2 3 99\r\nabc\r\n",
        Frame("Cas k 1 2 99 false abc"),
        M,
    );
    add(
        b"cas k 1 2 3 99 noreply\r\nabc\r\n",
        Frame("Cas k 1 2 99 true abc"),
        M,
    );
    add(
        b"set k 4294967297 4294967296 1\r\nx\r\n",
        Frame("Set k 1 0 0 false x"),
        M,
    );
    add(b"set k +7 -0 1\r\nx\r\n", Frame("Set k 7 0 0 false x"), M);
    add(b"set k 5\t 0 1\r\nx\r\n", Frame("Set k 5 0 0 false x"), M);
    add(
        b"set k 0 0 1\0junk\r\nx\r\n",
        Frame("Set k 0 0 0 false x"),
        M,
    );
    let at_limit = "v".repeat(LIMITS.max_value_len);
    add(
        &b(format!("set k 0 0 {} \r\n{at_limit}\r\n", at_limit.len())),
        Frame(s(format!("Set k 0 0 0 false {at_limit}"))),
        M,
    );
    add(b"set k 0 0\r\n", refused(ERROR), M);
    add(b"set k 0 0 1 noreply x\r\n", refused(ERROR), M);
    add(b"cas k 0 0 1\r\n", refused(ERROR), M);
    add(&b(format!("set {long} 0 0 1\r\n")), refused(FORMAT), M);
    add(
        &b(format!("set {long} 0 0 1 noreply\r\n")),
        quiet(FORMAT),
        M,
    );
    add(b"set k x 0 1\r\n", refused(FORMAT), M);
    add(b"set k -1 0 1\r\n", refused(FORMAT), M);
    add(b"set k 18446744073709551616 0 1\r\n", refused(FORMAT), M);
    add(b"set k 0 x 1\r\n", refused(FORMAT), M);
    add(b"set k 0 0 x\r\n", refused(FORMAT), M);
    add(b"set k 0 0 -1\r\n", refused(FORMAT), M);
    add(b"set k 0 0 2147483646\r\n", refused(FORMAT), M);
    add(b"set k x 0 1 noreply\r\n", quiet(FORMAT), M);
    add(b"cas k 0 0 1 x\r\n", refused(FORMAT), M);
    add(b"cas k 0 0 1 -1\r\n", refused(FORMAT), M);
    add(b"cas k 0 0 1 noreply\r\n", quiet(FORMAT), M);
    add(b"set k 0 0 1\r\naXY", refused(CHUNK), M);
    add(b"set k 0 0 1\r\na\nX", refused(CHUNK), M);
    add(b"set k 0 0 1 noreply\r\naXY", quiet(CHUNK), M);
    add(b"cas k 0 0 1 1 noreply\r\nabc", quiet(CHUNK), M);
    let body = "x".repeat(OVER);
    for (line, quietly) in [
        (format!("set k 0 0 {OVER}"), false),
        (format!("add k 0 0 {OVER} noreply"), true),
        (format!("cas k 0 0 {OVER} 5"), false),
    ] {
        let reply = if quietly {
            quiet(LARGE)
        } else {
            refused(LARGE)
        };
        // Checked against memcached by text_conformance.rs, over its 1 MiB.
        add(
            &b(format!("{line}\r\n{body}\r\n")),
            reply,
            Deliberate("1 KiB limit"),
        );
    }
    add(
        b"set k 0 0 2147483645\r\n",
        RefusedSkip(LARGE, false, 22 + 2147483647),
        Deliberate("data block not sent"),
    );

    // Other classic commands.
    add(b"delete k\r\n", Frame("Delete k false"), M);
    add(b"delete k 0\r\n", Frame("Delete k false"), M);
    add(b"delete k noreply\r\n", Frame("Delete k true"), M);
    add(b"delete k 0 noreply\r\n", Frame("Delete k true"), M);
    add(b"delete\r\n", refused(ERROR), M);
    add(b"delete k b c d\r\n", refused(ERROR), M);
    add(b"delete k 1\r\n", refused(USAGE), M);
    add(b"delete k x y\r\n", refused(USAGE), M);
    add(b"delete k 0 x\r\n", refused(USAGE), M);
    add(b"delete k 1 noreply\r\n", quiet(USAGE), M);
    add(b"delete k x noreply\r\n", quiet(USAGE), M);
    add(&b(format!("delete {long}\r\n")), refused(FORMAT), M);
    add(b"incr k 5\r\n", Frame("Incr k 5 false"), M);
    add(
        b"decr k 18446744073709551615 noreply\r\n",
        Frame("Decr k 18446744073709551615 true"),
        M,
    );
    add(b"incr k 1 x\r\n", Frame("Incr k 1 false"), M);
    add(b"incr k\r\n", refused(ERROR), M);
    add(b"incr k 1 2 3\r\n", refused(ERROR), M);
    add(b"incr k x\r\n", refused(DELTA), M);
    add(b"incr k -1\r\n", refused(DELTA), M);
    add(b"decr k 18446744073709551616\r\n", refused(DELTA), M);
    add(b"incr k x noreply\r\n", quiet(DELTA), M);
    add(&b(format!("incr {long} 1\r\n")), refused(FORMAT), M);
    add(b"touch k 10\r\n", Frame("Touch k 10 false"), M);
    add(b"touch k 10 noreply\r\n", Frame("Touch k 10 true"), M);
    add(b"touch k 1 2\r\n", Frame("Touch k 1 false"), M);
    add(b"touch k\r\n", refused(ERROR), M);
    add(b"touch k x\r\n", refused(EXPTIME), M);
    add(b"touch k x noreply\r\n", quiet(EXPTIME), M);
    add(&b(format!("touch {long} 1\r\n")), refused(FORMAT), M);
    add(b"flush_all\r\n", Frame("FlushAll 0 false"), M);
    add(b"flush_all 0\r\n", Frame("FlushAll 0 false"), M);
    add(b"flush_all noreply\r\n", Frame("FlushAll 0 true"), M);
    add(b"flush_all 0 noreply\r\n", Frame("FlushAll 0 true"), M);
    add(b"flush_all -5\r\n", Frame("FlushAll -5 false"), M);
    add(b"flush_all 0 2\r\n", Frame("FlushAll 0 false"), M);
    add(b"flush_all x\r\n", refused(EXPTIME), M);
    add(b"flush_all x noreply\r\n", quiet(EXPTIME), M);
    add(b"flush_all 1 2 3\r\n", refused(ERROR), M);
    add(b"version\r\n", Frame("Version"), M);
    add(b"version x y\r\n", Frame("Version"), M);
    add(b"verbosity 1\r\n", Frame("Verbosity 1 false"), M);
    add(b"verbosity 0 noreply\r\n", Frame("Verbosity 0 true"), M);
    add(b"verbosity 0 2\r\n", Frame("Verbosity 0 false"), M);
    add(b"verbosity\r\n", refused(ERROR), M);
    add(b"verbosity 1 2 3\r\n", refused(ERROR), M);
    add(b"verbosity x\r\n", refused(FORMAT), M);
    add(b"verbosity noreply\r\n", quiet(FORMAT), M);
    add(
        b"cache_memlimit 100\r\n",
        Frame("CacheMemlimit 100 false"),
        M,
    );
    add(
        b"cache_memlimit 100 noreply\r\n",
        Frame("CacheMemlimit 100 true"),
        M,
    );
    add(b"cache_memlimit\r\n", refused(ERROR), M);
    add(b"cache_memlimit x\r\n", refused(ERROR), M);
    add(b"cache_memlimit x noreply\r\n", quiet(ERROR), M);
    add(b"cache_memlimit 64 2 3\r\n", refused(ERROR), M);
    add(
        b"shutdown\r\n",
        Frame("Shutdown false"),
        Deliberate("stops the server"),
    );
    add(
        b"shutdown graceful\r\n",
        Frame("Shutdown true"),
        Deliberate("stops the server"),
    );
    add(b"shutdown x\r\n", refused(SHUTDOWN), M);
    add(b"shutdown graceful x\r\n", refused(SHUTDOWN), M);
    add(b"shutdown noreply\r\n", refused(SHUTDOWN), M);
    add(b"stats\r\n", Frame("Stats []"), M);
    add(b"stats  settings  \r\n", Frame("Stats [settings]"), M);
    add(b"stats detail dump\r\n", Frame("Stats [detail dump]"), M);
    add(
        b"quit\r\n",
        Frame("Quit"),
        Deliberate("closes the connection"),
    );
    add(
        b"quit x\r\n",
        Frame("Quit"),
        Deliberate("closes the connection"),
    );
    add(b"\r\n", refused(ERROR), M);
    add(b"\n", refused(ERROR), M);
    add(b"   \r\n", refused(ERROR), M);
    add(b"x\r\n", refused(ERROR), M);
    add(b"\0get a\r\n", refused(ERROR), M);
    add(
        b"slabs automove 1\r\n",
        refused(ERROR),
        Deliberate("slabs, lru, lru_crawler, watch, extstore are not served"),
    );

    // Meta commands.
    add(b"mn\r\n", Frame("MetaNoop"), M);
    add(b"mn x y\r\n", Frame("MetaNoop"), M);
    add(b"mn\n", Frame("MetaNoop"), M);
    add(b"mg k O\r\n", Frame("mg k [O]"), M);
    add(b"mg k\r\n", Frame("mg k []"), M);
    add(
        b"mg k v t  s c f k O1 q h l u T30 N-1 R5 P L\r\n",
        Frame("mg k [v t  s c f k O1 q h l u T30 N-1 R5 P L]"),
        M,
    );
    add(b"mg Zm9v b k v\r\n", Frame("mg Zm9v b64 [b k v]"), M);
    add(b"mg k kxyz vabc\r\n", Frame("mg k [kxyz vabc]"), M);
    add(
        &b(format!("mg k {o31}\r\n")),
        Frame(s(format!("mg k [{o31}]"))),
        M,
    );
    add(
        b"ms k 3 T0 F5 MA\r\nabc\r\n",
        Frame("ms k [T0 F5 MA] abc"),
        M,
    );
    add(
        b"ms Zm9v 1 b k c\r\nx\r\n",
        Frame("ms Zm9v b64 [b k c] x"),
        M,
    );
    add(b"ms k 0\r\n\r\n", Frame("ms k [] "), M);
    add(
        b"md k q k O5 I T30 C7\r\n",
        Frame("md k [q k O5 I T30 C7]"),
        M,
    );
    add(b"ma k MD D5 N0 J1 v\r\n", Frame("ma k [MD D5 N0 J1 v]"), M);
    add(b"ma k M+\r\n", Frame("ma k [M+]"), M);
    add(b"me k\r\n", Frame("me k []"), M);
    add(b"me Zm9v b\r\n", Frame("me Zm9v b64 [b]"), M);
    add(b"me k zz yy\r\n", Frame("me k [zz yy]"), M);
    add(
        b"mg k E5 x\r\n",
        Frame("mg k [E5 x]"),
        Deliberate("E and x are newer than memcached 1.6.18"),
    );
    add(b"mg\r\n", refused(ERROR), M);
    add(b"ms\r\n", refused(ERROR), M);
    add(b"md\r\n", refused(ERROR), M);
    add(b"ma\r\n", refused(ERROR), M);
    add(b"mx k\r\n", refused(ERROR), M);
    add(b"mgg k\r\n", refused(ERROR), M);
    add(b"me\r\n", refused(FORMAT), M);
    add(b"me k b\r\n", refused(FORMAT), M);
    add(&b(format!("me {long}\r\n")), refused(FORMAT), M);
    add(&b(format!("mg {long} v\r\n")), refused(FORMAT), M);
    add(&b(format!("md {long}\r\n")), refused(FORMAT), M);
    add(&b(format!("ma {long}\r\n")), refused(FORMAT), M);
    add(
        &b(format!("mg k {}\r\n", many("v", 18))),
        refused(GET_FLAGS_LONG),
        M,
    );
    add(
        &b(format!("mg k {}\r\n", many("v", 17))),
        refused(DUPLICATE),
        M,
    );
    add(
        &b(format!("md k {}\r\n", many("v", 18))),
        refused(FLAGS_LONG),
        M,
    );
    add(
        &b(format!("ma k {}\r\n", many("v", 18))),
        refused(FLAGS_LONG),
        M,
    );
    add(b"mg k k k\r\n", refused(DUPLICATE), M);
    add(b"mg k P Pxx\r\n", refused(DUPLICATE), M);
    add("mg k \u{e9}\r\n".as_bytes(), refused(DUPLICATE), M);
    add(b"mg k !\r\n", refused(INVALID), M);
    add(b"mg k v zz\r\n", refused(INVALID), M);
    add(b"mg k noreply\r\n", refused(INVALID), M);
    add(b"mg k Tabc\r\n", refused(TOKEN), M);
    add(b"mg k T\r\n", refused(TOKEN), M);
    add(b"mg k N\r\n", refused(TOKEN), M);
    add(b"mg k R1x\r\n", refused(TOKEN), M);
    add(b"mg k Cx\r\n", refused(TOKEN), M);
    add(b"mg k Fabc\r\n", refused(FORMAT), M);
    add(b"mg k M\r\n", refused(M_LENGTH), M);
    add(b"mg k MEE\r\n", refused(M_LENGTH), M);
    add(b"mg k Dx\r\n", refused(DELTA_VALUE), M);
    add(b"mg k Jx\r\n", refused(INITIAL), M);
    add(b"mg k Tx Dx\r\n", refused(DELTA_VALUE), M);
    add(b"mg k Tx Fx\r\n", refused(TOKEN), M);
    add(b"mg k Tx !\r\n", refused(INVALID), M);
    add(b"mg k b\r\n", refused(DECODING), M);
    add(&b(format!("mg k {o32}\r\n")), refused(OPAQUE), M);
    add(&b(format!("md k {o32}\r\n")), refused(OPAQUE), M);
    // memcached checks `ma`'s opaque after the update, so a key that
    // exists would answer what the update found first.
    add(&b(format!("ma absent {o32}\r\n")), refused(OPAQUE), M);
    add(b"md k !\r\n", refused(INVALID_OR_DUP), M);
    add(b"md k k k\r\n", refused(INVALID_OR_DUP), M);
    add(b"md k Tx\r\n", refused(INVALID_OR_DUP), M);
    add(b"md k b\r\n", refused(INVALID_OR_DUP), M);
    add(b"ma k !\r\n", refused(INVALID_OR_DUP), M);
    add(b"ma k Dx\r\n", refused(INVALID_OR_DUP), M);
    add(b"ma k Jx\r\n", refused(INVALID_OR_DUP), M);
    add(b"ma k M\r\n", refused(INVALID_OR_DUP), M);
    add(b"ma k MX\r\n", refused(MA_MODE), M);
    add(b"ma k Mi\r\n", refused(MA_MODE), M);
    add(b"ms k\r\n", refused(FORMAT), M);
    add(b"ms k x\r\n", refused(FORMAT), M);
    add(b"ms k -1\r\n", refused(FORMAT), M);
    add(b"ms k 2147483646\r\n", refused(FORMAT), M);
    add(&b(format!("ms {long} 1\r\n")), refused(FORMAT), M);
    add(
        &b(format!("ms k 1 {}\r\n", many("v", 17))),
        refused(FLAGS_LONG),
        M,
    );
    // From here memcached has read the length and swallows the data block.
    add(b"ms k 1 Fabc\r\nb\r\n", refused(FORMAT), M);
    add(b"ms k 1 MX\r\nb\r\n", refused(MS_MODE), M);
    add(b"ms k 1 Ms\r\nb\r\n", refused(MS_MODE), M);
    add(b"ms k 1 q MX\r\nb\r\n", refused(MS_MODE), M);
    add(b"ms k 1 MEE\r\nb\r\n", refused(M_LENGTH), M);
    add(b"ms k 1 !\r\nb\r\n", refused(INVALID), M);
    add(b"ms k 1 k k\r\nb\r\n", refused(DUPLICATE), M);
    add(b"ms k 1 Tx\r\nb\r\n", refused(TOKEN), M);
    add(b"ms k 1 b\r\nb\r\n", refused(DECODING), M);
    add(&b(format!("ms k 1 {o32}\r\nb\r\n")), refused(OPAQUE), M);
    add(b"ms k 1\r\nbXY", refused(CHUNK), M);
    add(b"ms k 1 q\r\nbXY", refused(CHUNK), M);
    add(
        &b(format!("ms k {OVER} q T0\r\n{body}\r\n")),
        refused(LARGE),
        Deliberate("1 KiB limit"),
    );
    add(
        b"ms k 2147483645 MX\r\n",
        RefusedSkip(MS_MODE, false, 20 + 2147483647),
        Deliberate("data block not sent"),
    );

    // Lines memcached will not wait for.
    add(
        &[b'x'; 2049],
        Fatal,
        Deliberate("memcached closes; tested apart"),
    );
    add(
        &b(format!("{}\r\n", "x".repeat(3000))),
        Fatal,
        Deliberate("memcached reads a long line that arrives whole"),
    );
    add(
        &b(format!("get {}", "k ".repeat(40_000))),
        Fatal,
        Deliberate("memcached buffers any get line"),
    );
    out
}

/// A request in a few words, for tables and failure messages.
pub fn show(req: &Request<'_>) -> String {
    let e = |b: &[u8]| b.escape_ascii().to_string();
    let meta = |name: &str, key: &cafe::protocol::text::Key<'_>, flags: &MetaFlags<'_>| {
        let b64 = if key.base64 { " b64" } else { "" };
        format!("{name} {}{b64} [{}]", e(key.raw), e(flags.raw))
    };
    match req {
        Request::Get {
            kind,
            exptime,
            keys,
        } => {
            let keys: Vec<String> = keys.map(e).collect();
            format!("{kind:?} {exptime} [{}]", keys.join(","))
        }
        Request::Store {
            cmd,
            key,
            flags,
            exptime,
            cas,
            noreply,
            value,
        } => format!(
            "{cmd:?} {} {flags} {exptime} {cas} {noreply} {}",
            e(key),
            e(value)
        ),
        Request::Delete { key, noreply } => format!("Delete {} {noreply}", e(key)),
        Request::Arith {
            incr,
            key,
            delta,
            noreply,
        } => {
            let name = if *incr { "Incr" } else { "Decr" };
            format!("{name} {} {delta} {noreply}", e(key))
        }
        Request::Touch {
            key,
            exptime,
            noreply,
        } => format!("Touch {} {exptime} {noreply}", e(key)),
        Request::FlushAll { delay, noreply } => format!("FlushAll {delay} {noreply}"),
        Request::Version => "Version".into(),
        Request::Verbosity { level, noreply } => format!("Verbosity {level} {noreply}"),
        Request::Quit => "Quit".into(),
        Request::Shutdown { graceful } => format!("Shutdown {graceful}"),
        Request::CacheMemlimit { megabytes, noreply } => {
            format!("CacheMemlimit {megabytes} {noreply}")
        }
        Request::Stats { args } => format!("Stats [{}]", e(args)),
        Request::MetaGet { key, flags } => meta("mg", key, flags),
        Request::MetaSet { key, flags, value } => {
            format!("{} {}", meta("ms", key, flags), e(value))
        }
        Request::MetaDelete { key, flags } => meta("md", key, flags),
        Request::MetaArith { key, flags } => meta("ma", key, flags),
        Request::MetaDebug { key, flags } => meta("me", key, flags),
        Request::MetaNoop => "MetaNoop".into(),
    }
}
