//! TLS ClientHello inspection for SNI routing: reassembles the first handshake message
//! from the records a client sends and reads its server_name, without decrypting
//! anything (a ClientHello is plaintext). Pure code on byte slices (std only).

use std::borrow::Cow;
use std::fmt;

/// TLS record content type of handshake messages.
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Content type, version and length.
const RECORD_HEADER_LEN: usize = 5;
/// Largest record payload a peer may send (TLSCiphertext: 2^14 + 256).
const MAX_RECORD_LEN: usize = 16384 + 256;
/// Handshake type and 3-byte length.
const HANDSHAKE_HEADER_LEN: usize = 4;
/// Largest ClientHello we take; real ones, post-quantum key shares included, are a
/// few kilobytes.
const MAX_HELLO_LEN: usize = 65536;
/// Extension number of server_name (RFC 6066).
const EXT_SERVER_NAME: u16 = 0;
/// server_name entry type of a DNS host name.
const NAME_TYPE_HOST: u8 = 0;
/// Longest host name we accept (a DNS name is at most 253 characters).
const MAX_NAME_LEN: usize = 255;

/// How far the ClientHello has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// Valid so far: call again with more bytes.
    Incomplete,
    /// The whole ClientHello is there.
    Complete {
        /// The requested host name, lowercased and without a trailing dot; None when the
        /// client sent no server_name extension (or no host_name entry in it).
        sni: Option<String>,
    },
}

/// Why the bytes are not a usable ClientHello. `Display` gives a short reason for a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// The first record is not a TLS handshake record (plain text, SSLv2, ...).
    NotTls,
    /// A TLS handshake, but its first message is not a ClientHello.
    NotClientHello,
    /// Bad record or message lengths, an interleaved non-handshake record, an oversized
    /// or inconsistent ClientHello.
    Malformed,
    /// The host name is empty, too long, or not made of [a-z0-9.-_].
    BadServerName,
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HelloError::NotTls => "not tls",
            HelloError::NotClientHello => "not a client hello",
            HelloError::Malformed => "malformed client hello",
            HelloError::BadServerName => "bad server name",
        })
    }
}

impl std::error::Error for HelloError {}

/// `buf`: the first bytes the client sent (after any PROXY header). Reassembles the
/// ClientHello handshake message across several TLS records (content type 22) and across
/// partial input (the caller calls again with more bytes). Returns Incomplete until the
/// whole ClientHello message is in `buf`. SNI: the first host_name entry of server_name
/// (ext 0), ASCII, returned lowercased, trailing dot removed; a name that is empty,
/// longer than 255, or has bytes outside [a-z0-9.-_] (after lowercasing) ->
/// Err(bad server name). No SNI extension -> Complete{sni:None}. Never panics.
/// Accepts record versions 0x0300..=0x0304.
pub fn parse_client_hello(buf: &[u8]) -> Result<Hello, HelloError> {
    match reassemble(buf)? {
        None => Ok(Hello::Incomplete),
        Some(message) => {
            let body = message.get(HANDSHAKE_HEADER_LEN..).unwrap_or_default();
            let sni = parse_body(body)?;
            Ok(Hello::Complete { sni })
        }
    }
}

/// Collects the first handshake message from the records in `buf`: the whole message
/// (header included) once it is complete, None while more bytes are needed. Borrows
/// from `buf` when the message fits in the first record, as it nearly always does.
fn reassemble(buf: &[u8]) -> Result<Option<Cow<'_, [u8]>>, HelloError> {
    let mut first: &[u8] = &[];
    let mut joined: Option<Vec<u8>> = None;
    let mut pos = 0;
    loop {
        let is_first = pos == 0;
        let rest = buf.get(pos..).unwrap_or_default();
        check_record_header(rest, is_first)?;
        let Some(&[_, _, _, hi, lo]) = rest.get(..RECORD_HEADER_LEN) else {
            return Ok(None);
        };
        let record_len = usize::from(u16::from_be_bytes([hi, lo]));
        let payload_end = (RECORD_HEADER_LEN + record_len).min(rest.len());
        let payload = rest.get(RECORD_HEADER_LEN..payload_end).unwrap_or_default();
        if is_first {
            first = payload;
        } else {
            joined
                .get_or_insert_with(|| first.to_vec())
                .extend_from_slice(payload);
        }
        let message = joined.as_deref().unwrap_or(first);
        if let Some(message_len) = check_handshake_header(message)? {
            if message.len() >= message_len {
                return Ok(Some(match joined {
                    Some(mut bytes) => {
                        bytes.truncate(message_len);
                        Cow::Owned(bytes)
                    }
                    None => Cow::Borrowed(first.get(..message_len).unwrap_or_default()),
                }));
            }
        }
        if payload.len() < record_len {
            // The record itself is still arriving.
            return Ok(None);
        }
        pos += RECORD_HEADER_LEN + record_len;
    }
}

/// Checks whatever part of a record header `rest` holds, so that a client which is not
/// speaking TLS is turned away on its first byte.
fn check_record_header(rest: &[u8], is_first: bool) -> Result<(), HelloError> {
    if let Some(&content_type) = rest.first() {
        if content_type != CONTENT_HANDSHAKE {
            // Anything but a handshake record before the ClientHello is complete.
            return Err(if is_first {
                HelloError::NotTls
            } else {
                HelloError::Malformed
            });
        }
    }
    let bad_version = match rest {
        [_, major, ..] if *major != 3 => true,
        [_, _, minor, ..] => *minor > 4,
        _ => false,
    };
    if bad_version {
        return Err(if is_first {
            HelloError::NotTls
        } else {
            HelloError::Malformed
        });
    }
    if let Some(&[hi, lo]) = rest.get(3..RECORD_HEADER_LEN) {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(HelloError::Malformed);
        }
    }
    Ok(())
}

/// Checks the start of the handshake message; once its 4-byte header is there, returns
/// the total message length (header included).
fn check_handshake_header(message: &[u8]) -> Result<Option<usize>, HelloError> {
    if let Some(&kind) = message.first() {
        if kind != HANDSHAKE_CLIENT_HELLO {
            return Err(HelloError::NotClientHello);
        }
    }
    let Some(&[_, a, b, c]) = message.get(..HANDSHAKE_HEADER_LEN) else {
        return Ok(None);
    };
    let body_len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    if body_len > MAX_HELLO_LEN {
        return Err(HelloError::Malformed);
    }
    Ok(Some(HANDSHAKE_HEADER_LEN + body_len))
}

/// Reads the ClientHello body (RFC 8446 4.1.2) and returns the host name, if any.
fn parse_body(body: &[u8]) -> Result<Option<String>, HelloError> {
    let mut r = Reader(body);
    let [major, _] = r.array::<2>()?; // legacy_version
    if major != 3 {
        return Err(HelloError::Malformed);
    }
    r.take(32)?; // random
    if r.vec8()?.len() > 32 {
        return Err(HelloError::Malformed); // legacy_session_id
    }
    let suites = r.vec16()?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(HelloError::Malformed);
    }
    if r.vec8()?.is_empty() {
        return Err(HelloError::Malformed); // legacy_compression_methods
    }
    if r.is_empty() {
        // Before TLS 1.3 the extensions block is optional.
        return Ok(None);
    }
    let mut extensions = Reader(r.vec16()?);
    if !r.is_empty() {
        return Err(HelloError::Malformed);
    }
    let mut sni = None;
    let mut seen_server_name = false;
    while !extensions.is_empty() {
        let kind = u16::from_be_bytes(extensions.array::<2>()?);
        let data = extensions.vec16()?;
        if kind == EXT_SERVER_NAME {
            // Two server_name extensions could route us by one name while the server
            // answers the other; TLS stacks refuse such a hello, and so do we.
            if seen_server_name {
                return Err(HelloError::Malformed);
            }
            seen_server_name = true;
            sni = parse_server_name(data)?;
        }
    }
    Ok(sni)
}

/// Reads the server_name extension (RFC 6066 section 3) and returns its first
/// host_name, validated.
fn parse_server_name(data: &[u8]) -> Result<Option<String>, HelloError> {
    let mut r = Reader(data);
    let mut list = Reader(r.vec16()?);
    if !r.is_empty() || list.is_empty() {
        return Err(HelloError::Malformed);
    }
    let mut host = None;
    while !list.is_empty() {
        let [name_type] = list.array::<1>()?;
        let name = list.vec16()?;
        if name_type == NAME_TYPE_HOST && host.is_none() {
            host = Some(name);
        }
    }
    host.map(host_name).transpose()
}

/// A host name as ringlb matches it: lowercase, no trailing dot, [a-z0-9.-_] only.
fn host_name(raw: &[u8]) -> Result<String, HelloError> {
    let name = raw.strip_suffix(b".").unwrap_or(raw);
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(HelloError::BadServerName);
    }
    let lower: Vec<u8> = name.iter().map(u8::to_ascii_lowercase).collect();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(b);
    if !lower.iter().all(allowed) {
        return Err(HelloError::BadServerName);
    }
    String::from_utf8(lower).map_err(|_| HelloError::BadServerName)
}

/// A cursor over a length-prefixed TLS structure; every read is bounds-checked and
/// running short is a malformed hello.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], HelloError> {
        if n > self.0.len() {
            return Err(HelloError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], HelloError> {
        self.take(N)?.try_into().map_err(|_| HelloError::Malformed)
    }

    /// A vector with a 1-byte length prefix.
    fn vec8(&mut self) -> Result<&'a [u8], HelloError> {
        let [len] = self.array::<1>()?;
        self.take(usize::from(len))
    }

    /// A vector with a 2-byte length prefix.
    fn vec16(&mut self) -> Result<&'a [u8], HelloError> {
        let len = u16::from_be_bytes(self.array::<2>()?);
        self.take(usize::from(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};

    /// A ClientHello captured from `openssl s_client -servername app.example.org`
    /// (OpenSSL 3.0): one record, TLS 1.3 with x25519 key share.
    const OPENSSL_HELLO: &str = "\
        160301013c010001380303608380b7dec4283a2bee28a42a58bfc58d7a26248ab170848951684bcdb07c8d206ba46803\
        c9e36343fd2862c12ddfc6549e43ec3431a2f5d21b7dda40657b5af8003e130213031301c02cc030009fcca9cca8ccaa\
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000b1\
        00000014001200000f6170702e6578616d706c652e6f7267000b000403000102000a00160014001d0017001e00190018\
        01000101010201030104002300000016000000170000000d002a0028040305030603080708080809080a080b08040805\
        0806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d00\
        20b65dfe26e5d074f2e27132d7e0a5cfb16a6fb9a45d6c3dd1f3f5cc459fb38322";

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn u16be(n: usize) -> [u8; 2] {
        u16::try_from(n).unwrap().to_be_bytes()
    }

    fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_be_bytes().to_vec();
        out.extend_from_slice(&u16be(data.len()));
        out.extend_from_slice(data);
        out
    }

    fn sni_ext(name: &[u8]) -> Vec<u8> {
        let mut entry = vec![NAME_TYPE_HOST];
        entry.extend_from_slice(&u16be(name.len()));
        entry.extend_from_slice(name);
        let mut list = u16be(entry.len()).to_vec();
        list.extend_from_slice(&entry);
        ext(EXT_SERVER_NAME, &list)
    }

    /// What a current browser sends besides SNI: a hybrid post-quantum key share
    /// (X25519MLKEM768, 1216 bytes) plus x25519, supported_versions, groups and ALPN.
    fn browser_extensions() -> Vec<Vec<u8>> {
        let mut shares = Vec::new();
        shares.extend_from_slice(&0x11ECu16.to_be_bytes());
        shares.extend_from_slice(&u16be(1216));
        shares.extend(std::iter::repeat_n(0xA5, 1216));
        shares.extend_from_slice(&0x001Du16.to_be_bytes());
        shares.extend_from_slice(&u16be(32));
        shares.extend_from_slice(&[0x5A; 32]);
        let mut key_share = u16be(shares.len()).to_vec();
        key_share.extend_from_slice(&shares);
        let mut alpn = vec![0, 12, 2];
        alpn.extend_from_slice(b"h2");
        alpn.push(8);
        alpn.extend_from_slice(b"http/1.1");
        vec![
            ext(0x000A, &[0, 6, 0x11, 0xEC, 0x00, 0x1D, 0x00, 0x17]), // supported_groups
            ext(0x0010, &alpn),
            ext(0x002B, &[4, 0x03, 0x04, 0x03, 0x03]), // supported_versions
            ext(0x0033, &key_share),
        ]
    }

    /// A whole handshake message: ClientHello with the given extensions (None: no
    /// extensions block at all).
    fn hello_message(extensions: Option<&[Vec<u8>]>) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0x11; 32]); // random
        body.push(32);
        body.extend_from_slice(&[0x22; 32]); // session id
        body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03]);
        body.extend_from_slice(&[1, 0]); // compression: null
        if let Some(extensions) = extensions {
            let all: Vec<u8> = extensions.concat();
            body.extend_from_slice(&u16be(all.len()));
            body.extend_from_slice(&all);
        }
        let mut message = vec![HANDSHAKE_CLIENT_HELLO];
        message.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        message.extend_from_slice(&body);
        message
    }

    /// Wraps a handshake message in records of at most `max` payload bytes each.
    fn records(message: &[u8], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in message.chunks(max) {
            out.extend_from_slice(&[CONTENT_HANDSHAKE, 0x03, 0x01]);
            out.extend_from_slice(&u16be(chunk.len()));
            out.extend_from_slice(chunk);
        }
        out
    }

    fn browser_hello(name: &[u8]) -> Vec<u8> {
        let mut extensions = vec![sni_ext(name)];
        extensions.extend(browser_extensions());
        records(&hello_message(Some(&extensions)), MAX_RECORD_LEN)
    }

    fn complete(name: &str) -> Result<Hello, HelloError> {
        Ok(Hello::Complete {
            sni: Some(name.to_owned()),
        })
    }

    #[test]
    fn openssl_capture() {
        let hello = unhex(OPENSSL_HELLO);
        assert_eq!(parse_client_hello(&hello), complete("app.example.org"));
        for k in 0..hello.len() {
            assert_eq!(parse_client_hello(&hello[..k]), Ok(Hello::Incomplete));
        }
    }

    #[test]
    fn browser_like_hello_with_post_quantum_key_share() {
        let hello = browser_hello(b"app1.example.org");
        assert!(hello.len() > 1300, "{}", hello.len());
        assert_eq!(parse_client_hello(&hello), complete("app1.example.org"));
    }

    #[test]
    fn fed_byte_by_byte() {
        let hello = browser_hello(b"app1.example.org");
        for k in 0..hello.len() {
            assert_eq!(
                parse_client_hello(&hello[..k]),
                Ok(Hello::Incomplete),
                "{k}"
            );
        }
        assert_eq!(parse_client_hello(&hello), complete("app1.example.org"));
    }

    #[test]
    fn fragmented_over_records() {
        let mut extensions = vec![sni_ext(b"split.example.org")];
        extensions.extend(browser_extensions());
        let message = hello_message(Some(&extensions));
        // Two records (as a client with a 1 KiB fragment limit would send), then tiny
        // records that split even the 4-byte handshake header.
        for max in [1024, 700, 3, 1] {
            let hello = records(&message, max);
            assert_eq!(
                parse_client_hello(&hello),
                complete("split.example.org"),
                "{max}"
            );
            let cut = hello.len() - 1;
            assert_eq!(parse_client_hello(&hello[..cut]), Ok(Hello::Incomplete));
        }
        let hello = records(&message, 3);
        for k in 0..hello.len() {
            assert_eq!(
                parse_client_hello(&hello[..k]),
                Ok(Hello::Incomplete),
                "{k}"
            );
        }
    }

    #[test]
    fn larger_than_one_record() {
        // A padding extension pushes the hello past 16 KiB: it must span records.
        let extensions = vec![sni_ext(b"big.example.org"), ext(0x0015, &[0; 20_000])];
        let message = hello_message(Some(&extensions));
        let hello = records(&message, 16384);
        assert_eq!(parse_client_hello(&hello), complete("big.example.org"));
    }

    #[test]
    fn bytes_after_the_hello_are_ignored() {
        let mut hello = browser_hello(b"app1.example.org");
        hello.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]); // ChangeCipherSpec
        assert_eq!(parse_client_hello(&hello), complete("app1.example.org"));
    }

    #[test]
    fn no_sni() {
        let hello = records(&hello_message(Some(&browser_extensions())), MAX_RECORD_LEN);
        assert_eq!(
            parse_client_hello(&hello),
            Ok(Hello::Complete { sni: None })
        );
        // An old-style hello with no extensions block at all.
        let hello = records(&hello_message(None), MAX_RECORD_LEN);
        assert_eq!(
            parse_client_hello(&hello),
            Ok(Hello::Complete { sni: None })
        );
    }

    #[test]
    fn name_is_lowercased_and_loses_its_trailing_dot() {
        let hello = browser_hello(b"App1.EXAMPLE.org.");
        assert_eq!(parse_client_hello(&hello), complete("app1.example.org"));
        let hello = browser_hello(b"under_score-1.example.org");
        assert_eq!(
            parse_client_hello(&hello),
            complete("under_score-1.example.org")
        );
    }

    #[test]
    fn bad_server_names() {
        let long = vec![b'a'; 256];
        let bad: [&[u8]; 7] = [
            b"",
            b".",
            &long,
            b"app example.org",
            b"app.example.org\0",
            "bücher.example".as_bytes(),
            b"*.example.org",
        ];
        for name in bad {
            let hello = browser_hello(name);
            assert_eq!(
                parse_client_hello(&hello),
                Err(HelloError::BadServerName),
                "{name:?}"
            );
        }
        assert_eq!(
            parse_client_hello(&browser_hello(&long[..255])),
            complete(&"a".repeat(255))
        );
    }

    #[test]
    fn first_host_name_entry_wins() {
        // An entry of another name type is skipped; the second host_name is ignored.
        let mut list = vec![7, 0, 1, b'x'];
        for name in [&b"first.example"[..], b"second.example"] {
            list.push(NAME_TYPE_HOST);
            list.extend_from_slice(&u16be(name.len()));
            list.extend_from_slice(name);
        }
        let mut data = u16be(list.len()).to_vec();
        data.extend_from_slice(&list);
        let message = hello_message(Some(&[ext(EXT_SERVER_NAME, &data)]));
        let hello = records(&message, MAX_RECORD_LEN);
        assert_eq!(parse_client_hello(&hello), complete("first.example"));
    }

    #[test]
    fn duplicate_server_name_extension() {
        let extensions = vec![sni_ext(b"a.example"), sni_ext(b"b.example")];
        let hello = records(&hello_message(Some(&extensions)), MAX_RECORD_LEN);
        assert_eq!(parse_client_hello(&hello), Err(HelloError::Malformed));
    }

    #[test]
    fn garbage_and_other_protocols() {
        assert_eq!(parse_client_hello(b""), Ok(Hello::Incomplete));
        assert_eq!(
            parse_client_hello(b"GET / HTTP/1.1\r\n"),
            Err(HelloError::NotTls)
        );
        assert_eq!(parse_client_hello(b"G"), Err(HelloError::NotTls));
        assert_eq!(
            parse_client_hello(b"SSH-2.0-OpenSSH\r\n"),
            Err(HelloError::NotTls)
        );
        // SSLv2-compatible hello.
        assert_eq!(
            parse_client_hello(&[0x80, 0x2E, 0x01, 0x03, 0x01]),
            Err(HelloError::NotTls)
        );
        // Application data first, and a handshake record of an unknown version.
        assert_eq!(
            parse_client_hello(&[0x17, 0x03, 0x03]),
            Err(HelloError::NotTls)
        );
        assert_eq!(parse_client_hello(&[0x16, 0x02]), Err(HelloError::NotTls));
        assert_eq!(
            parse_client_hello(&[0x16, 0x03, 0x05]),
            Err(HelloError::NotTls)
        );
        assert_eq!(
            parse_client_hello(&[0x16, 0x03, 0x00]),
            Ok(Hello::Incomplete)
        );
    }

    #[test]
    fn bad_record_lengths() {
        assert_eq!(
            parse_client_hello(&[0x16, 3, 1, 0, 0]),
            Err(HelloError::Malformed)
        );
        let too_big = u16be(MAX_RECORD_LEN + 1);
        let header = [0x16, 3, 1, too_big[0], too_big[1]];
        assert_eq!(parse_client_hello(&header), Err(HelloError::Malformed));
        let max = u16be(MAX_RECORD_LEN);
        let header = [0x16, 3, 1, max[0], max[1], 1];
        assert_eq!(parse_client_hello(&header), Ok(Hello::Incomplete));
    }

    #[test]
    fn non_handshake_record_before_the_hello_is_complete() {
        let hello = browser_hello(b"app1.example.org");
        let mut bad = records(&hello[5..100], 100);
        bad.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x10]);
        assert_eq!(parse_client_hello(&bad), Err(HelloError::Malformed));
    }

    #[test]
    fn not_a_client_hello() {
        // A ServerHello (type 2) where the ClientHello should be.
        let mut message = hello_message(None);
        message[0] = 2;
        let hello = records(&message, MAX_RECORD_LEN);
        assert_eq!(parse_client_hello(&hello), Err(HelloError::NotClientHello));
        assert_eq!(
            parse_client_hello(&hello[..6]),
            Err(HelloError::NotClientHello)
        );
    }

    #[test]
    fn oversized_hello() {
        let header = [0x16, 3, 1, 0, 4, HANDSHAKE_CLIENT_HELLO, 0x01, 0x00, 0x01];
        assert_eq!(parse_client_hello(&header), Err(HelloError::Malformed));
        let header = [0x16, 3, 1, 0, 4, HANDSHAKE_CLIENT_HELLO, 0x01, 0x00, 0x00];
        assert_eq!(parse_client_hello(&header), Ok(Hello::Incomplete));
    }

    #[test]
    fn inconsistent_lengths_inside_the_hello() {
        let good = hello_message(Some(&[sni_ext(b"a.example")]));
        let ext_len_at = 4 + 2 + 32 + 1 + 32 + 8 + 2;
        // The extensions block overruns the message, or leaves bytes after it.
        for delta in [1i32, -1] {
            let mut message = good.clone();
            let len = u16::from_be_bytes([message[ext_len_at], message[ext_len_at + 1]]);
            let len = (i32::from(len) + delta) as u16;
            message[ext_len_at..ext_len_at + 2].copy_from_slice(&len.to_be_bytes());
            let hello = records(&message, MAX_RECORD_LEN);
            assert_eq!(
                parse_client_hello(&hello),
                Err(HelloError::Malformed),
                "{delta}"
            );
        }
        // The server_name list claims one more byte than its extension holds.
        let mut message = good.clone();
        let list_len_at = ext_len_at + 2 + 4;
        message[list_len_at + 1] += 1;
        let hello = records(&message, MAX_RECORD_LEN);
        assert_eq!(parse_client_hello(&hello), Err(HelloError::Malformed));
        // Session id over 32 bytes; odd cipher suite length.
        for (at, value) in [(4 + 2 + 32, 33u8), (4 + 2 + 32 + 1 + 32 + 1, 5)] {
            let mut message = good.clone();
            message[at] = value;
            let hello = records(&message, MAX_RECORD_LEN);
            assert_eq!(
                parse_client_hello(&hello),
                Err(HelloError::Malformed),
                "{at}"
            );
        }
    }

    #[test]
    fn mutations_never_panic_and_keep_invariants() {
        let mut extensions = vec![sni_ext(b"m.example.org")];
        extensions.extend(browser_extensions());
        let message = hello_message(Some(&extensions));
        let vectors = [
            unhex(OPENSSL_HELLO),
            browser_hello(b"app1.example.org"),
            records(&message, 200),
            records(&hello_message(None), MAX_RECORD_LEN),
        ];
        // Seeded: the test fails the same way every time.
        let mut rng = StdRng::seed_from_u64(0x7115_C0DE_2024_0001);
        for _ in 0..20_000 {
            let mut input = vectors[rng.random_range(0..vectors.len())].clone();
            for _ in 0..1 + rng.random_range(0..3) {
                let at = rng.random_range(0..input.len().max(1));
                match rng.random_range(0..5) {
                    0 if at < input.len() => input[at] ^= 1u8 << rng.random_range(0..8u32),
                    1 if at < input.len() => input[at] = [0, 1, 0x7F, 0xFF][rng.random_range(0..4)],
                    2 => input.truncate(at),
                    // Length fields sit on the two bytes before a structure: nudge a
                    // big-endian pair up or down.
                    3 if at + 1 < input.len() => {
                        let v = u16::from_be_bytes([input[at], input[at + 1]]);
                        let v = if rng.random_range(0..2) == 0 {
                            v.wrapping_add(1)
                        } else {
                            v.wrapping_sub(1)
                        };
                        input[at..at + 2].copy_from_slice(&v.to_be_bytes());
                    }
                    _ => input.insert(at.min(input.len()), rng.next_u64() as u8),
                }
            }
            let result = parse_client_hello(&input);
            if let Ok(Hello::Complete { sni: Some(name) }) = &result {
                assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN);
                assert!(!name.ends_with('.'));
                assert_eq!(name.to_ascii_lowercase(), *name);
            }
            // A prefix of a decided input is either still incomplete or decided the
            // same way: more bytes never change an answer.
            if result == Ok(Hello::Incomplete) {
                continue;
            }
            let cut = rng.random_range(0..input.len().max(1));
            let prefix = parse_client_hello(&input[..cut]);
            assert!(
                prefix == Ok(Hello::Incomplete) || prefix == result,
                "prefix {cut} of {input:02x?}: {prefix:?} vs {result:?}"
            );
        }
    }
}
