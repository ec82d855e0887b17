//! memcached's meta protocol (`mg`, `ms`, `md`, `ma`, `mn`, `me`) over real
//! sockets, byte for byte as memcached 1.6 answers it. Return flags come
//! back in the order the request gave them, and every expected reply here
//! was checked against a running memcached 1.6.18 (`tests/common/text.rs`
//! says how to check them again), except for what that release lacks and
//! `protocol.txt` specifies: the `E` flag (explicit CAS), `md x` and `ms`
//! append with `N`; those tests follow the specification and newer
//! memcached releases, and say so.
//!
//! Every test starts its own server in-process on 127.0.0.1 port 0 and runs
//! at 1 worker and at 4 workers, with keys spread so every worker owns
//! some. TTL-dependent flags (`t`, `T`, `N`, `R`, `l`) run on a manual
//! clock: nothing sleeps, and every read has a timeout.

mod common;
use common::fill;
use common::text::{ITEM_LIMIT, TextConn, b64, each_server, each_server_with_clock, with_data};

/// `ms KEY LEN FLAGS` with its data block.
fn ms(key: &str, flags: &str, data: &[u8]) -> Vec<u8> {
    let line = if flags.is_empty() {
        format!("ms {key} {}", data.len())
    } else {
        format!("ms {key} {} {flags}", data.len())
    };
    with_data(&line, data)
}

/// Stores `data` with `ms` and checks the bare `HD`.
fn store(c: &mut TextConn, key: &str, flags: &str, data: &[u8]) {
    assert_eq!(
        c.meta_call(ms(key, flags, data)).line,
        "HD",
        "ms {key} {flags}"
    );
}

/// The cas of `key`, from `mg KEY c`.
fn cas_of(c: &mut TextConn, key: &str) -> u64 {
    c.meta_call(format!("mg {key} c\r\n")).cas()
}

/// Sends a meta request and checks its whole reply: the status line and,
/// for `VA`, the data block.
fn expect_meta(c: &mut TextConn, request: impl AsRef<[u8]>, line: &str, value: Option<&[u8]>) {
    let request = request.as_ref();
    let m = c.meta_call(request);
    assert_eq!(
        (
            m.line.as_str(),
            m.value.as_deref().map(|v| v.escape_ascii().to_string())
        ),
        (line, value.map(|v| v.escape_ascii().to_string())),
        "reply to \"{}\"",
        request.escape_ascii()
    );
}

// ---------------------------------------------------------------------------
// mg

#[test]
fn mg_returns_the_flags_asked_for_in_request_order() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-mg-", 4) {
            store(&mut c, &key, "T0 F5", b"bar");
            expect_meta(&mut c, format!("mg {key}\r\n"), "HD", None);
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 3", Some(b"bar"));
            expect_meta(&mut c, format!("mg {key} s v\r\n"), "VA 3 s3", Some(b"bar"));
            expect_meta(
                &mut c,
                format!("mg {key} O99 k v f s t\r\n"),
                &format!("VA 3 O99 k{key} f5 s3 t-1"),
                Some(b"bar"),
            );
            let m = c.meta_call(format!("mg {key} t f s O1 k c\r\n"));
            assert_eq!(m.masked("c"), format!("HD t-1 f5 s3 O1 k{key} c*"));
            assert_eq!(m.cas(), cas_of(&mut c, &key), "the same cas twice");
            // The tokens P and L are for proxies, and ignored.
            expect_meta(
                &mut c,
                format!("mg {key} Pfoo Lbar v\r\n"),
                "VA 3",
                Some(b"bar"),
            );
        }
    });
}

#[test]
fn mg_of_a_missing_key_is_en_with_its_key_and_opaque() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-miss-", 4) {
            expect_meta(&mut c, format!("mg {key}\r\n"), "EN", None);
            expect_meta(&mut c, format!("mg {key} v s t f c\r\n"), "EN", None);
            expect_meta(
                &mut c,
                format!("mg {key} O1 k v s t\r\n"),
                &format!("EN O1 k{key}"),
                None,
            );
            expect_meta(
                &mut c,
                format!("mg {key} k O2\r\n"),
                &format!("EN k{key} O2"),
                None,
            );
        }
    });
}

#[test]
fn mg_q_hides_a_miss_but_not_a_hit() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-q-", 4) {
            c.send(format!("mg {key} q v k O1\r\n"));
            c.meta_fence();
            store(&mut c, &key, "", b"hit");
            expect_meta(&mut c, format!("mg {key} q v\r\n"), "VA 3", Some(b"hit"));
            expect_meta(
                &mut c,
                format!("mg {key} q k\r\n"),
                &format!("HD k{key}"),
                None,
            );
        }
    });
}

#[test]
fn mg_sees_what_text_commands_stored_and_the_other_way_round() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-mix-", 4) {
            c.set(&key, 77, b"text");
            expect_meta(
                &mut c,
                format!("mg {key} s v f\r\n"),
                "VA 4 s4 f77",
                Some(b"text"),
            );
            assert_eq!(
                c.meta_call(ms(&key, "T0 F123 c", b"meta")).masked("c"),
                "HD c*"
            );
            let unique = cas_of(&mut c, &key);
            let items = c.retrieve(&format!("gets {key}"));
            assert_eq!(items.len(), 1);
            assert_eq!(
                (items[0].flags, items[0].value.as_slice(), items[0].cas),
                (123, &b"meta"[..], Some(unique))
            );
            assert_eq!(c.call(format!("delete {key}\r\n")), "DELETED");
            expect_meta(&mut c, format!("mg {key} v\r\n"), "EN", None);
            // A counter through both.
            c.set(&key, 0, b"5");
            expect_meta(&mut c, format!("ma {key} v\r\n"), "VA 1", Some(b"6"));
            assert_eq!(c.call(format!("incr {key} 1\r\n")), "7");
        }
    });
}

#[test]
fn mn_answers_mn_after_everything_before_it() {
    each_server(|t| {
        let mut c = t.conn();
        let key = &t.keys("mp-mn-", 1)[0];
        let mut batch = ms(key, "", b"v");
        batch.extend(format!("mg {key} v\r\nmn\r\n").into_bytes());
        c.send(&batch);
        c.expect("HD\r\nVA 1\r\nv\r\nMN\r\n");
        assert_eq!(c.call("mn\r\n"), "MN");
    });
}

// ---------------------------------------------------------------------------
// Flags shared by every command: b, O, k, q

#[test]
fn b_takes_base64_keys_and_k_returns_them_in_base64() {
    each_server(|t| {
        let mut c = t.conn();
        for (i, key) in t.keys("mp-b64-", 4).iter().enumerate() {
            // A binary key: bytes no text key may hold.
            let mut binary = vec![0u8, 1, b' ', b'\r', b'\n', 0xff, i as u8];
            binary.extend_from_slice(key.as_bytes());
            let enc = b64(&binary);
            let m = c.meta_call(ms(&enc, "b k O1 c", b"hi"));
            assert_eq!(m.masked("c"), format!("HD k{enc} b O1 c*"));
            expect_meta(
                &mut c,
                format!("mg {enc} b k v O2\r\n"),
                &format!("VA 2 k{enc} b O2"),
                Some(b"hi"),
            );
            // b anywhere among the flags.
            expect_meta(
                &mut c,
                format!("mg {enc} k v O2 b\r\n"),
                &format!("VA 2 k{enc} b O2"),
                Some(b"hi"),
            );
            expect_meta(
                &mut c,
                format!("md {enc} b k\r\n"),
                &format!("HD k{enc} b"),
                None,
            );
            expect_meta(
                &mut c,
                format!("md {enc} b k\r\n"),
                &format!("NF k{enc} b"),
                None,
            );
            expect_meta(
                &mut c,
                format!("mg {enc} b k O3\r\n"),
                &format!("EN k{enc} b O3"),
                None,
            );
            expect_meta(
                &mut c,
                format!("ma {enc} b k N0 J5 v\r\n"),
                &format!("VA 1 k{enc} b"),
                Some(b"5"),
            );
            // A key that is text once decoded is the same item as that text
            // key.
            let plain = format!("{key}-plain");
            store(&mut c, &b64(plain.as_bytes()), "b", b"decoded");
            assert_eq!(c.get(&plain), Some((b"decoded".to_vec(), 0)));
        }
        for bad in ["!!!!", "Zm9v=", "Zm9"] {
            for request in [format!("mg {bad} b v\r\n"), format!("md {bad} b\r\n")] {
                let reply = c.call(&request);
                assert!(
                    reply == "CLIENT_ERROR error decoding key"
                        || reply == "CLIENT_ERROR invalid or duplicate flag",
                    "{request:?}: {reply:?}"
                );
            }
            expect_meta(
                &mut c,
                format!("mg {bad} b v\r\n"),
                "CLIENT_ERROR error decoding key",
                None,
            );
        }
        c.meta_fence();
    });
}

#[test]
fn opaque_tokens_are_echoed_up_to_32_bytes_with_their_flag() {
    // memcached counts the O itself: "O" and 31 bytes is the longest.
    each_server(|t| {
        let mut c = t.conn();
        let key = &t.keys("mp-opaque-", 1)[0];
        store(&mut c, key, "", b"v");
        let longest = format!("O{}", "o".repeat(31));
        let too_long = format!("O{}", "o".repeat(32));
        expect_meta(
            &mut c,
            format!("mg {key} {longest}\r\n"),
            &format!("HD {longest}"),
            None,
        );
        expect_meta(
            &mut c,
            format!("mg {key}-missing {longest}\r\n"),
            &format!("EN {longest}"),
            None,
        );
        for request in [
            format!("mg {key} {too_long}\r\n").into_bytes(),
            format!("mg {key}-missing {too_long}\r\n").into_bytes(),
            // ms swallows its data block after the error.
            ms(key, &too_long, b"zz"),
        ] {
            expect_meta(&mut c, request, "CLIENT_ERROR opaque token too long", None);
        }
        expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 1", Some(b"v"));
    });
}

#[test]
fn thousands_of_quiet_requests_over_every_worker_answer_only_what_q_keeps() {
    // q hides mg's EN, and ms's, md's and ma's success; hits, NS, EX, NF and
    // errors are always sent, in request order.
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("mp-quiet-", 256);
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        // Stores: every second key, four times over, silently; an add of
        // an existing key answers NS with its opaque.
        for round in 0..4 {
            for (i, key) in keys.iter().enumerate().step_by(2) {
                batch.extend(ms(key, &format!("q O{i} F{i}"), key.as_bytes()));
                if round == 3 {
                    batch.extend(ms(key, &format!("q ME O{i}"), b"no"));
                    expected.extend(format!("NS O{i}\r\n").into_bytes());
                }
            }
        }
        // Reads: 2048 of them over every key; only the hits answer.
        for n in 0..2048usize {
            let i = (n * 37) % keys.len();
            let key = &keys[i];
            batch.extend(format!("mg {key} q v f k O{n}\r\n").into_bytes());
            if i % 2 == 0 {
                expected
                    .extend(format!("VA {} f{i} k{key} O{n}\r\n{key}\r\n", key.len()).into_bytes());
            }
            if n % 512 == 0 {
                // An error is always answered.
                batch.extend(format!("mg {key} q !\r\n").into_bytes());
                expected.extend(b"CLIENT_ERROR invalid flag\r\n");
            }
        }
        // Deletes and counters: quiet successes, loud misses.
        for (i, key) in keys.iter().enumerate().take(64) {
            batch.extend(format!("md {key} q O{i}\r\n").into_bytes());
            if i % 2 == 1 {
                expected.extend(format!("NF O{i}\r\n").into_bytes());
            }
            batch.extend(ms(&format!("{key}-n"), "q", b"0"));
            batch.extend(format!("ma {key}-n q O{i}\r\n").into_bytes());
            batch.extend(format!("ma {key}-missing q O{i}\r\n").into_bytes());
            expected.extend(format!("NF O{i}\r\n").into_bytes());
        }
        batch.extend(b"mn\r\n");
        expected.extend(b"MN\r\n");
        let writer = c.send_in_background(batch);
        c.expect(&expected);
        writer.join().expect("the writer");
        // Nothing more was owed.
        c.meta_fence();
        expect_meta(
            &mut c,
            format!("ma {}-n v\r\n", keys[0]),
            "VA 1",
            Some(b"2"),
        );
        expect_meta(&mut c, format!("mg {} v\r\n", keys[0]), "EN", None);
    });
}

// ---------------------------------------------------------------------------
// ms

#[test]
fn ms_sets_flags_and_returns_cas_key_and_opaque() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-ms-", 4) {
            store(&mut c, &key, "", b"plain");
            expect_meta(
                &mut c,
                format!("mg {key} f v\r\n"),
                "VA 5 f0",
                Some(b"plain"),
            );
            let m = c.meta_call(ms(&key, "F4294967295 k O9 c", b"hi"));
            assert_eq!(m.masked("c"), format!("HD k{key} O9 c*"));
            assert_eq!(m.cas(), cas_of(&mut c, &key));
            expect_meta(
                &mut c,
                format!("mg {key} f v\r\n"),
                "VA 2 f4294967295",
                Some(b"hi"),
            );
            // A later ms without F stores flags 0.
            let m = c.meta_call(ms(&key, "c O1", b"again"));
            assert_eq!(m.masked("c"), "HD c* O1");
            expect_meta(&mut c, format!("mg {key} f s\r\n"), "HD f0 s5", None);
            // q hides HD.
            c.send(ms(&key, "q", b"quiet"));
            c.meta_fence();
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 5", Some(b"quiet"));
            // An empty value.
            store(&mut c, &key, "", b"");
            expect_meta(&mut c, format!("mg {key} s v\r\n"), "VA 0 s0", Some(b""));
            // I without C changes nothing.
            store(&mut c, &key, "I", b"inv");
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 3", Some(b"inv"));
        }
    });
}

#[test]
fn ms_modes_add_append_prepend_replace_and_set() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-mode-", 4) {
            let fresh = format!("{key}-fresh");
            for mode in ["MR", "MA", "MP"] {
                expect_meta(&mut c, ms(&fresh, mode, b"x"), "NS", None);
            }
            expect_meta(&mut c, format!("mg {fresh}\r\n"), "EN", None);
            expect_meta(&mut c, ms(&key, "ME F3", b"bb"), "HD", None);
            expect_meta(&mut c, ms(&key, "ME", b"zz"), "NS", None);
            expect_meta(&mut c, ms(&key, "MA F9", b"cc"), "HD", None);
            expect_meta(&mut c, ms(&key, "MP", b"aa"), "HD", None);
            // Append and prepend keep the flags.
            expect_meta(
                &mut c,
                format!("mg {key} s f v\r\n"),
                "VA 6 s6 f3",
                Some(b"aabbcc"),
            );
            expect_meta(&mut c, ms(&key, "MR", b"xx"), "HD", None);
            expect_meta(&mut c, format!("mg {key} f v\r\n"), "VA 2 f0", Some(b"xx"));
            expect_meta(&mut c, ms(&key, "MS", b"yy"), "HD", None);
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 2", Some(b"yy"));
            // NS is sent despite q, with the flags asked for.
            c.send(ms(&key, "ME q O7 k", b"no"));
            c.expect(format!("NS O7 k{key}\r\n"));
            c.meta_fence();
            // Refused modes: the data block is swallowed.
            expect_meta(
                &mut c,
                ms(&key, "MZ", b"tt"),
                "CLIENT_ERROR invalid mode for ms M token",
                None,
            );
            expect_meta(
                &mut c,
                ms(&key, "MZ q", b"tt"),
                "CLIENT_ERROR invalid mode for ms M token",
                None,
            );
            expect_meta(
                &mut c,
                ms(&key, "MEE", b"tt"),
                "CLIENT_ERROR incorrect length for M token",
                None,
            );
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 2", Some(b"yy"));
        }
    });
}

#[test]
fn ms_compares_cas_with_c() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-cas-", 4) {
            let missing = format!("{key}-missing");
            store(&mut c, &key, "", b"one");
            let first = cas_of(&mut c, &key);
            // A stale cas: EX; no item: NF. Both answer despite q, and c's
            // value there means nothing.
            let m = c.meta_call(ms(&key, &format!("C{} c", first + 1000), b"bad"));
            assert_eq!(m.masked("c"), "EX c*");
            let m = c.meta_call(ms(&missing, &format!("C{first} q O4 k c"), b"bad"));
            assert_eq!(m.masked("c"), format!("NF O4 k{missing} c*"));
            expect_meta(&mut c, format!("mg {missing}\r\n"), "EN", None);
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 3", Some(b"one"));
            // The current cas: stored, with a new cas.
            let m = c.meta_call(ms(&key, &format!("C{first} c"), b"two"));
            assert_eq!(m.masked("c"), "HD c*");
            assert_ne!(m.cas(), first);
            assert_eq!(m.cas(), cas_of(&mut c, &key));
            // C holds in append mode too, and with replace.
            expect_meta(&mut c, ms(&key, &format!("MA C{first}"), b"!"), "EX", None);
            let now = cas_of(&mut c, &key);
            expect_meta(&mut c, ms(&key, &format!("MA C{now}"), b"!"), "HD", None);
            let now = cas_of(&mut c, &key);
            expect_meta(
                &mut c,
                ms(&key, &format!("MR C{now}"), b"three"),
                "HD",
                None,
            );
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 5", Some(b"three"));
            // C0 checks a set or a replace (no stored item has CAS 0), but,
            // as in memcached, not an append, a prepend or an arithmetic.
            expect_meta(&mut c, ms(&key, "C0", b"x"), "EX", None);
            expect_meta(&mut c, ms(&key, "MR C0", b"x"), "EX", None);
            expect_meta(&mut c, ms(&missing, "C0", b"x"), "NF", None);
            expect_meta(&mut c, ms(&key, "MA C0", b"!"), "HD", None);
            expect_meta(&mut c, ms(&key, "MP C0", b"!"), "HD", None);
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 7", Some(b"!three!"));
            store(&mut c, &key, "", b"5");
            expect_meta(&mut c, format!("ma {key} C0 v\r\n"), "VA 1", Some(b"6"));
        }
    });
}

#[test]
fn explicit_cas_e_sets_the_new_cas() {
    // protocol.txt: "E(token): use token as new CAS value" (newer memcached
    // releases; 1.6.18 refuses the flag). mg applies it to the item it
    // vivifies, as memcached 1.6.44 does.
    each_server(|t| {
        let mut c = t.conn();
        for (i, key) in t.keys("mp-e-", 4).iter().enumerate() {
            let base = 1_000_000 + 100 * i as u64;
            let m = c.meta_call(ms(key, &format!("E{base} c"), b"v"));
            assert_eq!(m.line, format!("HD c{base}"));
            assert_eq!(cas_of(&mut c, key), base);
            // Compare against it, and set the next one.
            expect_meta(
                &mut c,
                ms(key, &format!("C{base} E{}", base + 1), b"w"),
                "HD",
                None,
            );
            assert_eq!(cas_of(&mut c, key), base + 1);
            expect_meta(
                &mut c,
                ms(key, &format!("C{base} E{}", base + 2), b"x"),
                "EX",
                None,
            );
            assert_eq!(cas_of(&mut c, key), base + 1);
            expect_meta(
                &mut c,
                format!("mg {key}-viv N30 E{} c\r\n", base + 3),
                &format!("HD c{} W", base + 3),
                None,
            );
            assert_eq!(cas_of(&mut c, &format!("{key}-viv")), base + 3);
        }
    });
}

#[test]
fn ms_i_with_an_older_cas_stores_a_stale_item() {
    // C with I accepts a cas lower than the item's: the value is stored but
    // marked stale (X, and W for the first reader). A higher cas is EX.
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-msi-", 4) {
            store(&mut c, &key, "T0", b"old");
            let unique = cas_of(&mut c, &key);
            expect_meta(
                &mut c,
                ms(&key, &format!("C{} I", unique - 1), b"low"),
                "HD",
                None,
            );
            let m = c.meta_call(format!("mg {key} v c\r\n"));
            assert_eq!(
                (m.masked("c"), m.value.clone()),
                ("VA 3 c* X W".to_string(), Some(b"low".to_vec()))
            );
            let stale = m.cas();
            let m = c.meta_call(format!("mg {key} v c\r\n"));
            assert_eq!(m.masked("c"), "VA 3 c* Z X");
            expect_meta(
                &mut c,
                ms(&key, &format!("C{} I", stale + 1000), b"hig"),
                "EX",
                None,
            );
            // The current cas with I: a normal, fresh store.
            expect_meta(&mut c, ms(&key, &format!("C{stale} I"), b"new"), "HD", None);
            let m = c.meta_call(format!("mg {key} v c\r\n"));
            assert_eq!(
                (m.masked("c"), m.value),
                ("VA 3 c*".to_string(), Some(b"new".to_vec()))
            );
        }
    });
}

#[test]
fn ms_over_the_item_limit_drops_the_old_value_in_every_mode() {
    // memcached unlinks the key whatever the mode, and the error is sent
    // despite q; the block is swallowed and the connection goes on.
    each_server(|t| {
        let mut c = t.conn();
        let too_big = fill(b"0123456789", ITEM_LIMIT + 1);
        for (i, mode) in ["", "MS", "ME", "MR", "MA", "MP", "q"].iter().enumerate() {
            let key = format!("mp-big-{i}");
            store(&mut c, &key, "", b"old");
            expect_meta(
                &mut c,
                ms(&key, mode, &too_big),
                "SERVER_ERROR object too large for cache",
                None,
            );
            expect_meta(&mut c, format!("mg {key} v\r\n"), "EN", None);
        }
        c.meta_fence();
    });
}

#[test]
fn ms_append_with_n_creates_a_missing_item() {
    // protocol.txt: "N(token): if in append mode, autovivify on miss with
    // supplied TTL" (the N TTL, not T). memcached 1.6.18 answers NS here.
    each_server_with_clock(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-msn-", 4) {
            expect_meta(&mut c, ms(&key, "MA N30 T100", b"first"), "HD", None);
            expect_meta(
                &mut c,
                format!("mg {key} t v\r\n"),
                "VA 5 t30",
                Some(b"first"),
            );
            // Once it exists, N changes nothing: an append.
            expect_meta(&mut c, ms(&key, "MA N90", b"+more"), "HD", None);
            expect_meta(
                &mut c,
                format!("mg {key} t v\r\n"),
                "VA 10 t30",
                Some(b"first+more"),
            );
            expect_meta(
                &mut c,
                ms(&format!("{key}-p"), "MP N30", b"pre"),
                "HD",
                None,
            );
            expect_meta(&mut c, format!("mg {key}-p v\r\n"), "VA 3", Some(b"pre"));
        }
        t.advance_secs(30);
        for key in t.keys("mp-msn-", 4) {
            expect_meta(&mut c, format!("mg {key} v\r\n"), "EN", None);
        }
    });
}

#[test]
fn ms_t_sets_the_ttl_and_minus_one_means_none() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("mp-mst-", 4);
        for key in &keys {
            store(&mut c, key, "T10", b"v");
            expect_meta(&mut c, format!("mg {key} t\r\n"), "HD t10", None);
            store(&mut c, &format!("{key}-forever"), "T0", b"v");
            expect_meta(&mut c, format!("mg {key}-forever t\r\n"), "HD t-1", None);
            store(&mut c, &format!("{key}-gone"), "T-1", b"v");
            expect_meta(&mut c, format!("mg {key}-gone v\r\n"), "EN", None);
        }
        t.advance_secs(4);
        for key in &keys {
            expect_meta(&mut c, format!("mg {key} t\r\n"), "HD t6", None);
        }
        t.advance_secs(6);
        for key in &keys {
            expect_meta(&mut c, format!("mg {key} t v\r\n"), "EN", None);
            expect_meta(&mut c, format!("mg {key}-forever t\r\n"), "HD t-1", None);
        }
    });
}

// ---------------------------------------------------------------------------
// mg's item-changing flags: T, N, R; and h, l, u

#[test]
fn mg_t_updates_the_ttl_like_touch() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("mp-mgt-", 4);
        for key in &keys {
            store(&mut c, key, "T5", b"v");
            // T before t: t reports the new TTL.
            expect_meta(
                &mut c,
                format!("mg {key} T30 t v\r\n"),
                "VA 1 t30",
                Some(b"v"),
            );
            expect_meta(&mut c, format!("mg {key} t\r\n"), "HD t30", None);
            store(&mut c, &format!("{key}-forever"), "T5", b"v");
            expect_meta(&mut c, format!("mg {key}-forever T0 t\r\n"), "HD t-1", None);
            // T on a miss creates nothing.
            expect_meta(&mut c, format!("mg {key}-missing T30 t\r\n"), "EN", None);
        }
        t.advance_secs(29);
        for key in &keys {
            expect_meta(&mut c, format!("mg {key} t\r\n"), "HD t1", None);
        }
        t.advance_secs(1);
        for key in &keys {
            expect_meta(&mut c, format!("mg {key} v\r\n"), "EN", None);
            expect_meta(&mut c, format!("mg {key}-forever t\r\n"), "HD t-1", None);
            expect_meta(&mut c, format!("mg {key}-missing\r\n"), "EN", None);
        }
    });
}

#[test]
fn mg_n_vivifies_a_miss_for_one_winner() {
    // The first miss creates an empty item and wins (W); every later
    // reader sees it with Z until it is stored again.
    each_server(|t| {
        let mut c = t.conn();
        let mut other = t.conn();
        for key in t.keys("mp-viv-", 4) {
            let m = c.meta_call(format!("mg {key} N30 v c s k O1\r\n"));
            assert_eq!(m.masked("c"), format!("VA 0 c* s0 k{key} O1 W"));
            assert_eq!(m.value.as_deref(), Some(&b""[..]));
            let vivified = m.cas();
            let m = other.meta_call(format!("mg {key} N30 v c s\r\n"));
            assert_eq!(
                (m.line.clone(), m.value),
                (format!("VA 0 c{vivified} s0 Z"), Some(Vec::new()))
            );
            expect_meta(&mut other, format!("mg {key} v\r\n"), "VA 0 Z", Some(b""));
            expect_meta(&mut other, format!("mg {key}\r\n"), "HD Z", None);
            // q hides nothing here: it is a hit.
            expect_meta(&mut other, format!("mg {key} q N30\r\n"), "HD Z", None);
            // Text sees an empty item.
            assert_eq!(other.get(&key), Some((Vec::new(), 0)));
            // The winner stores the real value, with the vivified cas.
            expect_meta(
                &mut c,
                ms(&key, &format!("C{vivified} T100"), b"real"),
                "HD",
                None,
            );
            expect_meta(
                &mut other,
                format!("mg {key} N30 v\r\n"),
                "VA 4",
                Some(b"real"),
            );
            // Without v it is HD W.
            expect_meta(&mut c, format!("mg {key}-2 N30\r\n"), "HD W", None);
            expect_meta(&mut c, format!("mg {key}-2 N30 q\r\n"), "HD Z", None);
        }
    });
}

#[test]
fn mg_n_sets_the_vivified_items_ttl() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("mp-vivttl-", 4);
        for key in &keys {
            expect_meta(&mut c, format!("mg {key} N30 t\r\n"), "HD t30 W", None);
            expect_meta(
                &mut c,
                format!("mg {key} N30 t v\r\n"),
                "VA 0 t30 Z",
                Some(b""),
            );
        }
        t.advance_secs(29);
        for key in &keys {
            expect_meta(&mut c, format!("mg {key} t\r\n"), "HD t1 Z", None);
        }
        t.advance_secs(1);
        // Expired: the next miss wins again.
        for key in &keys {
            expect_meta(&mut c, format!("mg {key} N30\r\n"), "HD W", None);
        }
    });
}

#[test]
fn mg_r_wins_a_recache_when_the_ttl_runs_low() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("mp-recache-", 4);
        for key in &keys {
            store(&mut c, key, "T100", b"hi");
            // 100 s left is not below 30.
            expect_meta(
                &mut c,
                format!("mg {key} v R30 t\r\n"),
                "VA 2 t100",
                Some(b"hi"),
            );
            store(&mut c, &format!("{key}-forever"), "T0", b"hi");
        }
        t.advance_secs(70);
        for key in &keys {
            // 30 s left: not below 30 either.
            expect_meta(
                &mut c,
                format!("mg {key} v R30 t\r\n"),
                "VA 2 t30",
                Some(b"hi"),
            );
        }
        t.advance_secs(1);
        for key in &keys {
            expect_meta(
                &mut c,
                format!("mg {key} v R30 t\r\n"),
                "VA 2 t29 W",
                Some(b"hi"),
            );
            expect_meta(
                &mut c,
                format!("mg {key} v R30 t\r\n"),
                "VA 2 t29 Z",
                Some(b"hi"),
            );
            // Z for every reader now, R or not.
            expect_meta(&mut c, format!("mg {key} t\r\n"), "HD t29 Z", None);
            // An item that never expires never wins.
            expect_meta(
                &mut c,
                format!("mg {key}-forever v R200\r\n"),
                "VA 2",
                Some(b"hi"),
            );
            // A new store ends it.
            store(&mut c, key, "T100", b"ho");
            expect_meta(
                &mut c,
                format!("mg {key} v R30 t\r\n"),
                "VA 2 t100",
                Some(b"ho"),
            );
        }
    });
}

#[test]
fn mg_h_l_and_u_report_and_spare_the_access_history() {
    // h and l report the item as it was before this request. memcached
    // refreshes its last-access time only now and then, so l is checked
    // only for an item never read since it was stored.
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("mp-hist-", 4);
        for key in &keys {
            store(&mut c, key, "T100", b"x");
            store(&mut c, &format!("{key}-u"), "T100", b"x");
        }
        t.advance_secs(7);
        for key in &keys {
            expect_meta(&mut c, format!("mg {key} h l t\r\n"), "HD h0 l7 t93", None);
            expect_meta(&mut c, format!("mg {key} h t\r\n"), "HD h1 t93", None);
            // u: the read is not recorded.
            let u = format!("{key}-u");
            expect_meta(&mut c, format!("mg {u} u h l\r\n"), "HD h0 l7", None);
            expect_meta(&mut c, format!("mg {u} u h v\r\n"), "VA 1 h0", Some(b"x"));
            expect_meta(&mut c, format!("mg {u} h\r\n"), "HD h0", None);
            expect_meta(&mut c, format!("mg {u} h\r\n"), "HD h1", None);
        }
    });
}

// ---------------------------------------------------------------------------
// md

#[test]
fn md_deletes_and_answers_with_key_and_opaque() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-md-", 4) {
            store(&mut c, &key, "", b"x");
            expect_meta(
                &mut c,
                format!("md {key} k O9\r\n"),
                &format!("HD k{key} O9"),
                None,
            );
            expect_meta(&mut c, format!("mg {key}\r\n"), "EN", None);
            expect_meta(
                &mut c,
                format!("md {key} O9 k\r\n"),
                &format!("NF O9 k{key}"),
                None,
            );
            expect_meta(&mut c, format!("md {key}\r\n"), "NF", None);
            // q hides HD only.
            store(&mut c, &key, "", b"x");
            c.send(format!("md {key} q\r\nmd {key} q O2\r\nmn\r\n"));
            c.expect("NF O2\r\nMN\r\n");
            // C: only with the current cas.
            store(&mut c, &key, "", b"x");
            let unique = cas_of(&mut c, &key);
            expect_meta(&mut c, format!("md {key} C{}\r\n", unique + 1), "EX", None);
            c.send(format!("md {key} C{} q\r\nmn\r\n", unique + 1));
            c.expect("EX\r\nMN\r\n");
            expect_meta(&mut c, format!("mg {key} v\r\n"), "VA 1", Some(b"x"));
            expect_meta(&mut c, format!("md {key} C{unique}\r\n"), "HD", None);
            expect_meta(&mut c, format!("mg {key}\r\n"), "EN", None);
        }
    });
}

#[test]
fn md_i_marks_an_item_stale_for_revalidation() {
    // Stale-while-revalidate: md I keeps the item with a new cas and an
    // optional new TTL; the first reader gets X and W and recaches, others
    // get Z X and may serve the stale value; a store with the stale cas
    // makes it fresh.
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let mut other = t.conn();
        for key in t.keys("mp-stale-", 4) {
            store(&mut c, &key, "T100", b"old");
            let before = cas_of(&mut c, &key);
            expect_meta(&mut c, format!("md {key} I T30\r\n"), "HD", None);
            let m = c.meta_call(format!("mg {key} v c t\r\n"));
            assert_eq!(
                (m.masked("c"), m.value.clone()),
                ("VA 3 c* t30 X W".to_string(), Some(b"old".to_vec()))
            );
            let stale = m.cas();
            assert_ne!(stale, before, "md I gives a new cas");
            let m = other.meta_call(format!("mg {key} v c t\r\n"));
            assert_eq!(m.line, format!("VA 3 c{stale} t30 Z X"));
            expect_meta(&mut other, format!("mg {key}\r\n"), "HD Z X", None);
            // The old cas no longer matches; the stale one does.
            expect_meta(
                &mut other,
                ms(&key, &format!("C{before} T100"), b"lost"),
                "EX",
                None,
            );
            expect_meta(
                &mut c,
                ms(&key, &format!("C{stale} T100"), b"new"),
                "HD",
                None,
            );
            expect_meta(
                &mut other,
                format!("mg {key} v t\r\n"),
                "VA 3 t100",
                Some(b"new"),
            );
            // md I q: silent; without T the TTL stays.
            c.send(format!("md {key} I q\r\n"));
            c.meta_fence();
            expect_meta(&mut c, format!("mg {key} t\r\n"), "HD t100 X W", None);
            // md I of a missing key: NF.
            expect_meta(&mut c, format!("md {key}-missing I\r\n"), "NF", None);
        }
        t.advance_secs(100);
        for key in t.keys("mp-stale-", 4) {
            expect_meta(&mut c, format!("mg {key} v\r\n"), "EN", None);
        }
    });
}

#[test]
fn md_t_without_i_just_deletes() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-mdt-", 4) {
            store(&mut c, &key, "T0", b"x");
            expect_meta(&mut c, format!("md {key} T5\r\n"), "HD", None);
            expect_meta(&mut c, format!("mg {key} v\r\n"), "EN", None);
        }
    });
}

#[test]
fn md_x_empties_the_value_and_keeps_the_item() {
    // protocol.txt: "x: removes the item value, but leaves the item"
    // (memcached releases from 2024 on; 1.6.18 refuses the flag): the item then
    // reads as an empty hit.
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-mdx-", 4) {
            store(&mut c, &key, "F7", b"value");
            expect_meta(&mut c, format!("md {key} x\r\n"), "HD", None);
            expect_meta(&mut c, format!("mg {key} s v\r\n"), "VA 0 s0", Some(b""));
            // With I: an empty stale tombstone.
            store(&mut c, &key, "F7", b"value");
            expect_meta(&mut c, format!("md {key} I x\r\n"), "HD", None);
            expect_meta(
                &mut c,
                format!("mg {key} s v\r\n"),
                "VA 0 s0 X W",
                Some(b""),
            );
            expect_meta(&mut c, format!("md {key}-missing x\r\n"), "NF", None);
        }
    });
}

// ---------------------------------------------------------------------------
// ma

#[test]
fn ma_increments_and_decrements() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-ma-", 4) {
            expect_meta(&mut c, format!("ma {key}\r\n"), "NF", None);
            expect_meta(&mut c, format!("ma {key} D5 v\r\n"), "NF", None);
            expect_meta(
                &mut c,
                format!("ma {key} k O3\r\n"),
                &format!("NF k{key} O3"),
                None,
            );
            store(&mut c, &key, "", b"0");
            expect_meta(&mut c, format!("ma {key}\r\n"), "HD", None);
            expect_meta(&mut c, format!("ma {key} v\r\n"), "VA 1", Some(b"2"));
            let m = c.meta_call(format!("ma {key} v t c k O7\r\n"));
            assert_eq!(
                (m.masked("c"), m.value.clone()),
                (format!("VA 1 t-1 c* k{key} O7"), Some(b"3".to_vec()))
            );
            assert_eq!(m.cas(), cas_of(&mut c, &key));
            expect_meta(
                &mut c,
                format!("ma {key} O7 k v\r\n"),
                &format!("VA 1 O7 k{key}"),
                Some(b"4"),
            );
            expect_meta(&mut c, format!("ma {key} v D10\r\n"), "VA 2", Some(b"14"));
            expect_meta(&mut c, format!("ma {key} MI v\r\n"), "VA 2", Some(b"15"));
            expect_meta(&mut c, format!("ma {key} M+ v D5\r\n"), "VA 2", Some(b"20"));
            expect_meta(&mut c, format!("ma {key} MD v D3\r\n"), "VA 2", Some(b"17"));
            expect_meta(&mut c, format!("ma {key} M- v\r\n"), "VA 2", Some(b"16"));
            // Decrement stops at 0.
            expect_meta(
                &mut c,
                format!("ma {key} MD v D9000\r\n"),
                "VA 1",
                Some(b"0"),
            );
            // q hides HD and VA.
            c.send(format!("ma {key} q\r\nma {key} q v D2\r\nmn\r\n"));
            c.expect("MN\r\n");
            // (Space-padded in place after the decrement to 0, as memcached
            // does.)
            let (value, _) = c.get(&key).expect("the counter");
            assert_eq!(String::from_utf8_lossy(&value).trim_end(), "3");
            // C: only with the current cas; a new cas after.
            let unique = cas_of(&mut c, &key);
            expect_meta(
                &mut c,
                format!("ma {key} C{} v\r\n", unique + 1),
                "EX",
                None,
            );
            c.send(format!("ma {key} C{} q\r\nmn\r\n", unique + 1));
            c.expect("EX\r\nMN\r\n");
            let m = c.meta_call(format!("ma {key} C{unique} c v\r\n"));
            assert_eq!(m.value.as_deref(), Some(&b"4"[..]));
            assert_ne!(m.cas(), unique);
        }
    });
}

#[test]
fn ma_wraps_at_64_bits_and_may_pad_a_shorter_value() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-mawrap-", 4) {
            store(&mut c, &key, "", b"18446744073709551615");
            expect_meta(&mut c, format!("ma {key} v\r\n"), "VA 1", Some(b"0"));
            expect_meta(&mut c, format!("ma {key} v D2\r\n"), "VA 1", Some(b"2"));
            // "100" less 1: memcached stores "99 " (in place, space-padded);
            // the value it returns is "99".
            store(&mut c, &key, "", b"100");
            expect_meta(&mut c, format!("ma {key} MD v\r\n"), "VA 2", Some(b"99"));
            let m = c.meta_call(format!("mg {key} v\r\n"));
            let v = m.value.expect("a value");
            assert!(v == b"99" || v == b"99 ", "\"{}\"", v.escape_ascii());
        }
    });
}

#[test]
fn ma_n_creates_a_missing_counter_at_j() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("mp-man-", 4);
        for key in &keys {
            // J alone does not create.
            expect_meta(&mut c, format!("ma {key} J5 v\r\n"), "NF", None);
            // Created at J (default 0), the delta not applied; the N TTL.
            expect_meta(
                &mut c,
                format!("ma {key} N100 J13 v t\r\n"),
                "VA 2 t100",
                Some(b"13"),
            );
            expect_meta(
                &mut c,
                format!("ma {key} N100 J13 v t\r\n"),
                "VA 2 t100",
                Some(b"14"),
            );
            expect_meta(&mut c, format!("ma {key}-0 N0\r\n"), "HD", None);
            expect_meta(
                &mut c,
                format!("mg {key}-0 v f t\r\n"),
                "VA 1 f0 t-1",
                Some(b"0"),
            );
            expect_meta(
                &mut c,
                format!("ma {key}-max N0 J18446744073709551615 v\r\n"),
                "VA 20",
                Some(b"18446744073709551615"),
            );
            // T sets the TTL on success; T before t reports it.
            expect_meta(
                &mut c,
                format!("ma {key}-0 T50 t v\r\n"),
                "VA 1 t50",
                Some(b"1"),
            );
        }
        t.advance_secs(50);
        for key in &keys {
            expect_meta(&mut c, format!("ma {key}-0 v\r\n"), "NF", None);
            expect_meta(&mut c, format!("ma {key} v t\r\n"), "VA 2 t50", Some(b"15"));
        }
        t.advance_secs(50);
        for key in &keys {
            expect_meta(&mut c, format!("ma {key} v\r\n"), "NF", None);
        }
    });
}

#[test]
fn ma_refuses_a_non_numeric_value_even_when_quiet() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-manum-", 4) {
            for value in [&b"abc"[..], b"", b"-50", b"184467440737095516150"] {
                store(&mut c, &key, "", value);
                for request in [format!("ma {key} v\r\n"), format!("ma {key} q\r\n")] {
                    expect_meta(
                        &mut c,
                        &request,
                        "CLIENT_ERROR cannot increment or decrement non-numeric value",
                        None,
                    );
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------
// me

#[test]
fn me_describes_an_item_in_key_value_pairs() {
    // The pairs hold memcached's internals (slab class, total size); only
    // their shape and the meaningful ones are checked.
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("mp-me-", 4) {
            expect_meta(&mut c, format!("me {key}\r\n"), "EN", None);
            store(&mut c, &key, "T0", b"v");
            let unique = cas_of(&mut c, &key);
            let line = c.call(format!("me {key}\r\n"));
            let rest = line
                .strip_prefix(&format!("ME {key} "))
                .unwrap_or_else(|| panic!("{line:?}"));
            let pairs: std::collections::HashMap<&str, &str> = rest
                .split(' ')
                .map(|p| {
                    p.split_once('=')
                        .unwrap_or_else(|| panic!("{p:?} in {line:?}"))
                })
                .collect();
            assert_eq!(pairs.get("exp"), Some(&"-1"), "{line:?}");
            assert_eq!(
                pairs.get("cas"),
                Some(&unique.to_string().as_str()),
                "{line:?}"
            );
            assert!(
                matches!(pairs.get("fetch"), Some(&"yes" | &"no")),
                "{line:?}"
            );
            assert!(
                pairs.get("la").is_some_and(|v| v.parse::<u64>().is_ok()),
                "{line:?}"
            );
            // A base64 key is described in base64.
            let enc = b64(format!("{key}\x00bin").as_bytes());
            store(&mut c, &enc, "b", b"v");
            let line = c.call(format!("me {enc} b\r\n"));
            assert!(line.starts_with(&format!("ME {enc} ")), "{line:?}");
        }
    });
}

// ---------------------------------------------------------------------------
// Refused requests

#[test]
fn malformed_meta_requests_get_memcacheds_errors() {
    each_server(|t| {
        let key = &t.keys("mp-err-", 1)[0];
        let long = "k".repeat(251);
        let mut c = t.conn();
        store(&mut c, key, "", b"v");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"mg\r\n".to_vec(), "ERROR\r\n"),
            (b"ms\r\n".to_vec(), "ERROR\r\n"),
            (b"md\r\n".to_vec(), "ERROR\r\n"),
            (b"ma\r\n".to_vec(), "ERROR\r\n"),
            (b"MG k v\r\n".to_vec(), "ERROR\r\n"),
            (
                format!("mg {key} !\r\n").into_bytes(),
                "CLIENT_ERROR invalid flag\r\n",
            ),
            (
                format!("mg {key} Z\r\n").into_bytes(),
                "CLIENT_ERROR invalid flag\r\n",
            ),
            (
                format!("mg {key} v v\r\n").into_bytes(),
                "CLIENT_ERROR duplicate flag\r\n",
            ),
            (
                format!("mg {key} q !\r\n").into_bytes(),
                "CLIENT_ERROR invalid flag\r\n",
            ),
            (
                format!("mg {key} Tabc\r\n").into_bytes(),
                "CLIENT_ERROR bad token in command line format\r\n",
            ),
            (
                format!("mg {key} Nabc\r\n").into_bytes(),
                "CLIENT_ERROR bad token in command line format\r\n",
            ),
            (
                format!("mg {key} Rabc\r\n").into_bytes(),
                "CLIENT_ERROR bad token in command line format\r\n",
            ),
            (
                format!("mg {long} v\r\n").into_bytes(),
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                format!("md {long}\r\n").into_bytes(),
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                format!("ma {long}\r\n").into_bytes(),
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                format!("me {long}\r\n").into_bytes(),
                "CLIENT_ERROR bad command line format\r\n",
            ),
            // ms: a bad length leaves the block to be read as a command.
            (
                format!("ms {key}\r\n").into_bytes(),
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                format!("ms {key} -1\r\n").into_bytes(),
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                with_data(&format!("ms {key} abc"), b"x"),
                "CLIENT_ERROR bad command line format\r\nERROR\r\n",
            ),
            (
                with_data(&format!("ms {long} 1"), b"x"),
                "CLIENT_ERROR bad command line format\r\nERROR\r\n",
            ),
            // ms: a bad flag after a good length swallows the block.
            (ms(key, "!", b"xy"), "CLIENT_ERROR invalid flag\r\n"),
            (ms(key, "c c", b"xy"), "CLIENT_ERROR duplicate flag\r\n"),
            (
                ms(key, "Tabc", b"xy"),
                "CLIENT_ERROR bad token in command line format\r\n",
            ),
            (
                ms(key, "Cabc", b"xy"),
                "CLIENT_ERROR bad token in command line format\r\n",
            ),
            (
                ms(key, "Fabc", b"xy"),
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                with_data(&format!("ms {key} 2"), b"hello"),
                "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
            ),
            (
                format!("md {key} !\r\n").into_bytes(),
                "CLIENT_ERROR invalid or duplicate flag\r\n",
            ),
            (
                format!("md {key} q q\r\n").into_bytes(),
                "CLIENT_ERROR invalid or duplicate flag\r\n",
            ),
            (
                format!("md {key} Cabc\r\n").into_bytes(),
                "CLIENT_ERROR invalid or duplicate flag\r\n",
            ),
            (
                format!("ma {key} Mx\r\n").into_bytes(),
                "CLIENT_ERROR invalid mode for ma M token\r\n",
            ),
            (
                format!("ma {key} MII\r\n").into_bytes(),
                "CLIENT_ERROR invalid or duplicate flag\r\n",
            ),
            (
                format!("ma {key} Dabc\r\n").into_bytes(),
                "CLIENT_ERROR invalid or duplicate flag\r\n",
            ),
            (
                format!("ma {key} D-1\r\n").into_bytes(),
                "CLIENT_ERROR invalid or duplicate flag\r\n",
            ),
            (
                format!("ma {key} N0 Jabc\r\n").into_bytes(),
                "CLIENT_ERROR invalid or duplicate flag\r\n",
            ),
        ];
        for (request, reply) in cases {
            let mut c = t.conn();
            c.send(&request);
            let got = c.bytes(reply.len());
            assert_eq!(
                got.escape_ascii().to_string(),
                reply.as_bytes().escape_ascii().to_string(),
                "reply to \"{}\"",
                request.escape_ascii()
            );
            c.meta_fence();
        }
        // Nothing refused changed the item.
        expect_meta(&mut c, format!("mg {key} v f\r\n"), "VA 1 f0", Some(b"v"));
    });
}

/// The same over one connection: errors never desynchronise it.
#[test]
fn errors_and_replies_interleave_on_one_connection() {
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("mp-inter-", 8);
        let mut batch = Vec::new();
        let mut expected = String::new();
        for (i, key) in keys.iter().enumerate() {
            batch.extend(ms(key, &format!("F{i}"), key.as_bytes()));
            expected.push_str("HD\r\n");
            batch.extend(ms(key, "!", b"junk"));
            expected.push_str("CLIENT_ERROR invalid flag\r\n");
            batch.extend(format!("mg {key} f v\r\n").into_bytes());
            expected.push_str(&format!("VA {} f{i}\r\n{key}\r\n", key.len()));
            batch.extend(format!("get {key}\r\n").into_bytes());
            expected.push_str(&format!(
                "VALUE {key} {i} {}\r\n{key}\r\nEND\r\n",
                key.len()
            ));
            batch.extend(b"bogus\r\n");
            expected.push_str("ERROR\r\n");
        }
        batch.extend(b"mn\r\n");
        expected.push_str("MN\r\n");
        c.send(&batch);
        c.expect(&expected);
    });
}
