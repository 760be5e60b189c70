//! Byte forwarding through the real binary: 64 MiB each way in every forward mode, one-way
//! transfers, slow consumers, half-close in both orders, and resets propagated in both
//! directions. Tests other than the bulk ones run once per forward mode, since splice and
//! copy reach EOF, back-pressure and errors through different code.

pub mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;

const BULK_LEN: usize = 64 << 20;
const SEED_UP: u64 = 0x5eed_0001;
const SEED_DOWN: u64 = 0x5eed_0002;
const MODES: [&str; 3] = ["splice", "copy", "auto"];

/// What the bulk backend saw on one connection.
struct BulkReport {
    received: std::io::Result<(u64, [u8; 32])>,
    sent: std::io::Result<[u8; 32]>,
}

/// The client writes 64 MiB while reading the backend's 64 MiB; the backend does the same.
/// Both directions are compared by sha256 and length, and the log line's byte counters too.
fn bulk_both_ways(forward: &str) {
    let timeout = Duration::from_secs(60);
    let (tx, rx) = mpsc::channel::<BulkReport>();
    let backend = Backend::spawn_with_timeout(timeout, move |mut s| {
        // Sends only once the client has spoken, so that the writer and the reader overlap.
        let mut first = [0u8; 1];
        match s.read(&mut first) {
            Ok(1) => {}
            _ => return,
        }
        let mut writer_side = s.try_clone().expect("clone backend socket");
        let writer = thread::spawn(move || {
            let sent = write_seeded(&mut writer_side, SEED_DOWN, BULK_LEN);
            let _ = writer_side.shutdown(Shutdown::Write);
            sent
        });
        let received = hash_to_eof(&mut (&first[..]).chain(&mut s));
        let sent = writer.join().expect("backend writer thread");
        let _ = tx.send(BulkReport { received, sent });
    });

    let port = free_port();
    let cfg = config(
        2,
        port,
        &format!(r#", "forward": "{forward}""#),
        "",
        &servers(&[backend.addr()]),
    );
    let lb = Ringlb::start(&cfg);

    let mut client = connect(frontend(port));
    set_timeouts(&client, timeout);
    let local = client.local_addr().unwrap();
    let mut client_writer = client.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let sent = write_seeded(&mut client_writer, SEED_UP, BULK_LEN)?;
        client_writer.shutdown(Shutdown::Write)?;
        Ok::<_, std::io::Error>(sent)
    });
    let (down_len, down_hash) = hash_to_eof(&mut client)
        .unwrap_or_else(|e| panic!("client read failed: {e}; log:\n{}", lb.log()));
    let up_hash = writer
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("client write failed: {e}; log:\n{}", lb.log()));

    let report = rx
        .recv_timeout(timeout)
        .expect("backend reported nothing for the connection");
    let backend_sent = report.sent.expect("backend write failed");
    let (up_len, backend_received) = report.received.expect("backend read failed");

    assert_eq!(
        down_len, BULK_LEN as u64,
        "client received a wrong byte count"
    );
    assert_eq!(
        down_hash, backend_sent,
        "server->client bytes differ (sha256)"
    );
    assert_eq!(
        up_len, BULK_LEN as u64,
        "backend received a wrong byte count"
    );
    assert_eq!(
        backend_received, up_hash,
        "client->server bytes differ (sha256)"
    );

    let line = lb.conn_line(local);
    assert_eq!(
        line.field("bytes_in"),
        BULK_LEN.to_string(),
        "{}",
        line.line
    );
    assert_eq!(
        line.field("bytes_out"),
        BULK_LEN.to_string(),
        "{}",
        line.line
    );
    assert_eq!(line.field("server"), "be/s1", "{}", line.line);
    assert!(
        matches!(line.end(), "client_close" | "server_close"),
        "{}",
        line.line
    );
}

#[test]
fn bulk_64mib_each_way_splice() {
    bulk_both_ways("splice");
}

#[test]
fn bulk_64mib_each_way_copy() {
    bulk_both_ways("copy");
}

#[test]
fn bulk_64mib_each_way_auto() {
    bulk_both_ways("auto");
}

/// One worker, one frontend in forward mode `mode`, one server.
fn start_lb(mode: &str, server: std::net::SocketAddr) -> (Ringlb, u16) {
    let port = free_port();
    let cfg = config(
        1,
        port,
        &format!(r#", "forward": "{mode}""#),
        "",
        &servers(&[server]),
    );
    (Ringlb::start(&cfg), port)
}

/// The client uploads 16 MiB and half-closes; the hash sink answers with their sha256.
#[test]
fn upload_to_hash_sink() {
    const LEN: usize = 16 << 20;
    let backend = Backend::hash_sink();
    for mode in MODES {
        let (lb, port) = start_lb(mode, backend.addr());
        let mut client = connect(frontend(port));
        let local = client.local_addr().unwrap();
        let sent = write_seeded(&mut client, 3, LEN)
            .unwrap_or_else(|e| panic!("{mode}: upload: {e}; log:\n{}", lb.log()));
        client.shutdown(Shutdown::Write).unwrap();
        let answer = read_to_eof(&mut client, 64)
            .unwrap_or_else(|e| panic!("{mode}: reading the hash: {e}; log:\n{}", lb.log()));
        assert_eq!(answer, sent, "{mode}: sha256 of the upload differs");
        let line = lb.conn_line(local);
        assert_eq!(
            line.field("bytes_in"),
            LEN.to_string(),
            "{mode}: {}",
            line.line
        );
        assert_eq!(line.field("bytes_out"), "32", "{mode}: {}", line.line);
    }
}

/// The sender writes 16 MiB and closes; the client gets every byte, then EOF.
#[test]
fn download_from_sender() {
    const LEN: usize = 16 << 20;
    const SEED: u64 = 4;
    let backend = Backend::sender(SEED, LEN);
    let expected = sha256(&seeded_bytes(SEED, LEN));
    for mode in MODES {
        let (lb, port) = start_lb(mode, backend.addr());
        let mut client = connect(frontend(port));
        let local = client.local_addr().unwrap();
        let (len, hash) = hash_to_eof(&mut client)
            .unwrap_or_else(|e| panic!("{mode}: download: {e}; log:\n{}", lb.log()));
        assert_eq!(len, LEN as u64, "{mode}: byte count");
        assert_eq!(hash, expected, "{mode}: sha256 of the download differs");
        drop(client);
        let line = lb.conn_line(local);
        assert_eq!(
            line.field("bytes_out"),
            LEN.to_string(),
            "{mode}: {}",
            line.line
        );
        assert_eq!(line.end(), "server_close", "{mode}: {}", line.line);
    }
}

/// Each side in turn reads slowly, so the balancer keeps finding the other side's socket
/// full and must hold bytes back without losing or reordering any.
#[test]
fn slow_consumers_get_every_byte() {
    const LEN: usize = 8 << 20;
    const SEED: u64 = 5;
    let (tx, rx) = mpsc::channel();
    // Reads 16 KiB at a time with a pause every 64 KiB, then answers with the hash.
    let slow_sink = Backend::spawn(move |mut s| {
        let mut hasher_input = Vec::with_capacity(LEN);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if hasher_input.len() + n > LEN => {
                    let _ = tx.send(Err(ErrorKind::InvalidData));
                    return;
                }
                Ok(n) => {
                    hasher_input.extend_from_slice(&buf[..n]);
                    if hasher_input.len() % (64 * 1024) < n {
                        thread::sleep(Duration::from_millis(2));
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.kind()));
                    return;
                }
            }
        }
        let _ = tx.send(Ok(sha256(&hasher_input)));
    });
    let sender = Backend::sender(SEED, LEN);
    let expected = sha256(&seeded_bytes(SEED, LEN));
    for mode in MODES {
        // A slow client downloading.
        let (lb, port) = start_lb(mode, sender.addr());
        let mut client = connect(frontend(port));
        let mut got = Vec::with_capacity(LEN);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if got.len() + n > LEN => panic!("{mode}: slow download: too many bytes"),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.len() % (64 * 1024) < n {
                        thread::sleep(Duration::from_millis(2));
                    }
                }
                Err(e) => panic!("{mode}: slow download: {e}; log:\n{}", lb.log()),
            }
        }
        assert_eq!(got.len(), LEN, "{mode}: slow download byte count");
        assert_eq!(sha256(&got), expected, "{mode}: slow download bytes differ");
        drop((client, lb));

        // A slow server receiving.
        let (lb, port) = start_lb(mode, slow_sink.addr());
        let mut client = connect(frontend(port));
        let sent = write_seeded(&mut client, SEED, LEN)
            .unwrap_or_else(|e| panic!("{mode}: upload to a slow server: {e}; log:\n{}", lb.log()));
        client.shutdown(Shutdown::Write).unwrap();
        let got = rx
            .recv_timeout(IO_TIMEOUT)
            .expect("slow server reported nothing")
            .unwrap_or_else(|e| panic!("{mode}: slow server read: {e:?}; log:\n{}", lb.log()));
        assert_eq!(
            got, sent,
            "{mode}: bytes received by the slow server differ"
        );
    }
}

/// The client sends and half-closes; the backend answers only after that EOF, with more data
/// than fits in socket buffers, so the server->client direction must stay open on its own.
#[test]
fn half_close_client_first() {
    const REQUEST_LEN: usize = 100 * 1024;
    const REPLY_LEN: usize = 1 << 20;
    const SEED: u64 = 77;
    let backend = Backend::half_close_answerer(SEED, REPLY_LEN);
    let request = seeded_bytes(1, REQUEST_LEN);
    let expected_reply = seeded_bytes(SEED, REPLY_LEN);
    for mode in MODES {
        let (lb, port) = start_lb(mode, backend.addr());
        let mut client = connect(frontend(port));
        let local = client.local_addr().unwrap();
        client.write_all(&request).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let reply = read_to_eof(&mut client, 2 * REPLY_LEN)
            .unwrap_or_else(|e| panic!("{mode}: reading the answer: {e}; log:\n{}", lb.log()));

        assert_eq!(reply.len(), 32 + REPLY_LEN, "{mode}: answer length");
        assert_eq!(
            reply[..32],
            sha256(&request),
            "{mode}: backend saw other request bytes"
        );
        assert!(
            reply[32..] == expected_reply[..],
            "{mode}: answer bytes differ"
        );

        let line = lb.conn_line(local);
        assert_eq!(
            line.field("bytes_in"),
            REQUEST_LEN.to_string(),
            "{mode}: {}",
            line.line
        );
        assert_eq!(
            line.field("bytes_out"),
            (32 + REPLY_LEN).to_string(),
            "{mode}: {}",
            line.line
        );
        assert_eq!(
            line.end(),
            HALF_CLOSE_CLIENT_FIRST_END,
            "{mode}: {}",
            line.line
        );
    }
}

/// The backend sends everything and half-closes first; the client reads to EOF and only then
/// sends its own data, which must still reach the backend.
#[test]
fn half_close_server_first() {
    const LEN: usize = 1 << 20;
    const SEED: u64 = 78;
    let (tx, rx) = mpsc::channel();
    let backend = Backend::spawn(move |mut s| {
        if write_seeded(&mut s, SEED, LEN).is_err() || s.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let _ = tx.send(hash_to_eof(&mut s).map_err(|e| e.kind()));
    });
    let greeting_expected = seeded_bytes(SEED, LEN);
    let request = seeded_bytes(2, LEN);
    for mode in MODES {
        let (lb, port) = start_lb(mode, backend.addr());
        let mut client = connect(frontend(port));
        let local = client.local_addr().unwrap();
        let greeting = read_to_eof(&mut client, 2 * LEN).unwrap_or_else(|e| {
            panic!(
                "{mode}: reading the backend's data: {e}; log:\n{}",
                lb.log()
            )
        });
        assert!(
            greeting == greeting_expected,
            "{mode}: server->client bytes differ"
        );

        // The backend has closed its side; the client->server direction is still open.
        client.write_all(&request).unwrap_or_else(|e| {
            panic!(
                "{mode}: writing after the server's FIN: {e}; log:\n{}",
                lb.log()
            )
        });
        client.shutdown(Shutdown::Write).unwrap();
        let (len, hash) = rx
            .recv_timeout(IO_TIMEOUT)
            .expect("backend reported nothing")
            .unwrap_or_else(|e| panic!("{mode}: backend read failed: {e:?}; log:\n{}", lb.log()));
        assert_eq!(
            len, LEN as u64,
            "{mode}: backend received a wrong byte count"
        );
        assert_eq!(
            hash,
            sha256(&request),
            "{mode}: client->server bytes differ"
        );

        // The balancer closes the client side once both directions are done.
        let mut rest = [0u8; 16];
        assert_eq!(client.read(&mut rest).unwrap(), 0, "{mode}: expected EOF");
        let line = lb.conn_line(local);
        assert_eq!(
            line.field("bytes_in"),
            LEN.to_string(),
            "{mode}: {}",
            line.line
        );
        assert_eq!(
            line.field("bytes_out"),
            LEN.to_string(),
            "{mode}: {}",
            line.line
        );
        assert_eq!(
            line.end(),
            HALF_CLOSE_SERVER_FIRST_END,
            "{mode}: {}",
            line.line
        );
    }
}

/// end= names the side whose FIN came first (a later reset or timeout would override it).
const HALF_CLOSE_CLIENT_FIRST_END: &str = "client_close";
const HALF_CLOSE_SERVER_FIRST_END: &str = "server_close";

/// A backend that resets its connection must reach the client as a reset, not a clean EOF.
#[test]
fn server_reset_reaches_client() {
    let backend = Backend::resetter();
    for mode in MODES {
        let (lb, port) = start_lb(mode, backend.addr());
        let mut client = connect(frontend(port));
        let local = client.local_addr().unwrap();
        client.write_all(b"hello").unwrap();
        let mut buf = [0u8; 64];
        match client.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Ok(0) => panic!(
                "{mode}: client saw a clean EOF instead of a reset; log:\n{}",
                lb.log()
            ),
            other => panic!(
                "{mode}: client read gave {other:?}, expected ConnectionReset; log:\n{}",
                lb.log()
            ),
        }
        let line = lb.conn_line(local);
        assert_eq!(line.end(), "server_reset", "{mode}: {}", line.line);
        assert_eq!(line.field("bytes_in"), "5", "{mode}: {}", line.line);
    }
}

/// A client that resets its connection must reach the backend as a reset, not a clean EOF.
#[test]
fn client_reset_reaches_server() {
    let (got_tx, got_rx) = mpsc::channel();
    let (end_tx, end_rx) = mpsc::channel();
    let backend = Backend::spawn(move |mut s| {
        let mut buf = [0u8; 64];
        let Ok(n) = s.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        let _ = got_tx.send(buf[..n].to_vec());
        let outcome = hash_to_eof(&mut s).map(|_| ()).map_err(|e| e.kind());
        let _ = end_tx.send(outcome);
    });
    for mode in MODES {
        let (lb, port) = start_lb(mode, backend.addr());
        let mut client = connect(frontend(port));
        let local = client.local_addr().unwrap();
        client.write_all(b"marker").unwrap();
        let got = got_rx.recv_timeout(IO_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "{mode}: backend never got the client's bytes ({e}); log:\n{}",
                lb.log()
            )
        });
        assert_eq!(got, b"marker", "{mode}");
        reset(client);

        match end_rx.recv_timeout(IO_TIMEOUT) {
            Ok(Err(ErrorKind::ConnectionReset)) => {}
            Ok(Ok(())) => panic!(
                "{mode}: backend saw a clean EOF instead of a reset; log:\n{}",
                lb.log()
            ),
            other => panic!(
                "{mode}: backend read gave {other:?}, expected ConnectionReset; log:\n{}",
                lb.log()
            ),
        }
        let line = lb.conn_line(local);
        assert_eq!(line.end(), "client_reset", "{mode}: {}", line.line);
    }
}
