//! Connections driven through completion sequences in virtual time, against a fake worker
//! that records every request and answers the synchronous ones from a script: the paths
//! the integration tests cover, and those they cannot reach (short sends, ENOBUFS, a reset
//! during connect, a FIN while a retry is pending, a deadline racing a completion, cancels
//! completing after the close).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::*;

const ECONNREFUSED: i32 = -libc::ECONNREFUSED;
const ECANCELED: i32 = -libc::ECANCELED;
const ECONNRESET: i32 = -libc::ECONNRESET;
const ENOBUFS: i32 = -libc::ENOBUFS;
const BUF: u32 = 32 * 1024;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn policy(forward: Forward) -> Policy {
    Policy {
        forward,
        retries: 2,
        connect_timeout: ms(5000),
        queue_timeout: ms(1000),
        client_timeout: ms(50_000),
        server_timeout: ms(30_000),
        reset_on_no_server: true,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    PickServer,
    Connect { retry: bool },
    ConnectFailed,
    Connected,
    ClientGone,
    Enqueue { first: bool },
    Dequeue,
    Route(Option<String>),
    Refused(Refusal),
    InspectRecv(usize),
    BuildPreface,
    SendPreface(Vec<u8>),
    Recv(Dir),
    Send(Dir, HeldBuf),
    Recycle(u16),
    WaitBuf(Dir),
    PollIn(Dir),
    PollOut(Dir),
    TakePipe(Dir),
    ReturnPipe(Dir, bool),
    SpliceIn(Dir),
    SpliceOut(Dir, usize),
    Bytes(Dir, u64),
    ShutdownWrite(Side),
    Reset(Side),
    CancelAll,
}

use Call::*;

/// The fake worker: records calls; answers picks, sockets, splices from scripts.
struct Fake {
    calls: Vec<Call>,
    picks: VecDeque<Pick>,
    sockets: VecDeque<Submitted>,
    gone: Option<End>,
    route: Option<Policy>,
    /// Bytes the preface puts in front (our PROXY header), and what the client had sent.
    header: Vec<u8>,
    early: Option<(Vec<u8>, bool)>,
    pipes: bool,
    splice_in: VecDeque<io::Result<Spliced>>,
    splice_out: VecDeque<io::Result<Spliced>>,
    /// Where the last inspect read may write (the connection's buffer).
    inspect_room: Option<(*mut u8, usize)>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            calls: Vec::new(),
            picks: VecDeque::new(),
            sockets: VecDeque::new(),
            gone: None,
            route: Some(policy(Forward::Copy)),
            header: Vec::new(),
            early: None,
            pipes: true,
            splice_in: VecDeque::new(),
            splice_out: VecDeque::new(),
            inspect_room: None,
        }
    }

    /// The calls since the last `take`.
    fn take(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls)
    }

    /// Plays the kernel for the pending inspect read: writes `bytes` into its room.
    fn client_sends(&mut self, bytes: &[u8]) -> i32 {
        let (ptr, len) = self.inspect_room.take().expect("an inspect read in flight");
        let n = bytes.len().min(len);
        // SAFETY: `ptr` is the spare room of the connection's buffer, `len` long, handed
        // out by the connection for this read and untouched since.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, n) };
        n as i32
    }
}

impl ConnIo for Fake {
    fn pick(&mut self) -> Pick {
        self.calls.push(PickServer);
        self.picks.pop_front().unwrap_or(Pick::Server(0))
    }
    fn connect(&mut self, _timeout: Duration, retry: bool) -> Submitted {
        self.calls.push(Connect { retry });
        self.sockets.pop_front().unwrap_or(Submitted::Connect)
    }
    fn connect_failed(&mut self) {
        self.calls.push(ConnectFailed);
    }
    fn connected(&mut self) {
        self.calls.push(Connected);
    }
    fn client_gone(&mut self) -> Option<End> {
        self.calls.push(ClientGone);
        self.gone
    }
    fn enqueue(&mut self, first: bool) {
        self.calls.push(Enqueue { first });
    }
    fn dequeue(&mut self) {
        self.calls.push(Dequeue);
    }
    fn route(&mut self, sni: Option<&str>, _: Option<(SocketAddr, SocketAddr)>) -> Option<Policy> {
        self.calls.push(Route(sni.map(str::to_string)));
        self.route
    }
    fn refused(&mut self, why: Refusal) {
        self.calls.push(Refused(why));
    }
    fn inspect_recv(&mut self, ptr: *mut u8, len: usize) {
        self.inspect_room = Some((ptr, len));
        self.calls.push(InspectRecv(len));
    }
    fn preface(&mut self, pre: &mut Vec<u8>, inspected: bool, _sni: Option<&str>) -> Preface {
        self.calls.push(BuildPreface);
        if self.header.is_empty() && !inspected && self.early.is_none() {
            return Preface::None;
        }
        let from_inspection = pre.len();
        pre.splice(0..0, self.header.iter().copied());
        let (early, eof) = self.early.take().unwrap_or_default();
        pre.extend_from_slice(&early);
        Preface::Ready {
            from_client: from_inspection + early.len(),
            client_eof: eof,
        }
    }
    fn send_preface(&mut self, ptr: *const u8, len: usize) {
        // SAFETY: the connection hands out a slice of its own buffer.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
        self.calls.push(SendPreface(bytes));
    }
    fn recv(&mut self, dir: Dir) {
        self.calls.push(Recv(dir));
    }
    fn send(&mut self, dir: Dir, buf: HeldBuf) {
        self.calls.push(Send(dir, buf));
    }
    fn recycle(&mut self, bid: u16) {
        self.calls.push(Recycle(bid));
    }
    fn wait_buf(&mut self, dir: Dir) {
        self.calls.push(WaitBuf(dir));
    }
    fn poll_in(&mut self, dir: Dir) {
        self.calls.push(PollIn(dir));
    }
    fn poll_out(&mut self, dir: Dir) {
        self.calls.push(PollOut(dir));
    }
    fn take_pipe(&mut self, dir: Dir) -> bool {
        self.calls.push(TakePipe(dir));
        self.pipes
    }
    fn return_pipe(&mut self, dir: Dir, empty: bool) {
        self.calls.push(ReturnPipe(dir, empty));
    }
    fn splice_in(&mut self, dir: Dir, _len: usize) -> io::Result<Spliced> {
        self.calls.push(SpliceIn(dir));
        self.splice_in
            .pop_front()
            .unwrap_or(Ok(Spliced::WouldBlock))
    }
    fn splice_out(&mut self, dir: Dir, len: usize) -> io::Result<Spliced> {
        self.calls.push(SpliceOut(dir, len));
        self.splice_out
            .pop_front()
            .unwrap_or(Ok(Spliced::Moved(len)))
    }
    fn bytes(&mut self, dir: Dir, n: u64) {
        self.calls.push(Bytes(dir, n));
    }
    fn shutdown_write(&mut self, side: Side) {
        self.calls.push(ShutdownWrite(side));
    }
    fn reset(&mut self, side: Side) {
        self.calls.push(Reset(side));
    }
    fn cancel_all(&mut self) {
        self.calls.push(CancelAll);
    }
}

fn buf(bid: u16, sent: u32, len: u32) -> HeldBuf {
    HeldBuf { bid, sent, len }
}

/// A copy-mode connection connected at t=1 ms, both directions reading.
fn connected(io: &mut Fake) -> Conn {
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, io);
    assert_eq!(io.take(), [PickServer, Connect { retry: false }]);
    c.on_connect(ms(1), 0, io);
    c.on_other(); // the connect's linked timeout, cancelled
    assert_eq!(
        io.take(),
        [Connected, BuildPreface, Recv(Dir::Up), Recv(Dir::Down)]
    );
    assert_eq!(c.connect_time(), Some(ms(1)));
    c
}

#[test]
fn request_and_answer_then_both_fins() {
    let mut io = Fake::new();
    let mut c = connected(&mut io);
    c.on_recv(ms(2), Dir::Up, 78, Some(7), &mut io);
    assert_eq!(
        io.take(),
        [Bytes(Dir::Up, 78), Send(Dir::Up, buf(7, 0, 78))]
    );
    c.on_send(ms(2), Dir::Up, 78, &mut io);
    assert_eq!(io.take(), [Recycle(7), Recv(Dir::Up)]);
    c.on_recv(ms(3), Dir::Down, 201, Some(9), &mut io);
    c.on_send(ms(3), Dir::Down, 201, &mut io);
    assert_eq!(
        io.take(),
        [
            Bytes(Dir::Down, 201),
            Send(Dir::Down, buf(9, 0, 201)),
            Recycle(9),
            Recv(Dir::Down)
        ]
    );
    // The client half-closes: its FIN goes on to the server.
    c.on_recv(ms(4), Dir::Up, 0, None, &mut io);
    assert_eq!(io.take(), [ShutdownWrite(Side::Server)]);
    assert!(!c.is_over());
    c.on_recv(ms(5), Dir::Down, 0, None, &mut io);
    assert_eq!(io.take(), [ShutdownWrite(Side::Client)]);
    assert!(c.is_over());
    assert_eq!(c.end(), Some(End::ClientClose));
    assert_eq!(&c.termination(), b"--");
    assert_eq!((c.bytes(Dir::Up), c.bytes(Dir::Down)), (78, 201));
}

#[test]
fn short_sends_resume_where_they_stopped() {
    let mut io = Fake::new();
    let mut c = connected(&mut io);
    c.on_recv(ms(2), Dir::Down, 1000, Some(3), &mut io);
    io.take();
    c.on_send(ms(2), Dir::Down, 400, &mut io);
    assert_eq!(io.take(), [Send(Dir::Down, buf(3, 400, 1000))]);
    c.on_send(ms(3), Dir::Down, 599, &mut io);
    assert_eq!(io.take(), [Send(Dir::Down, buf(3, 999, 1000))]);
    c.on_send(ms(3), Dir::Down, 1, &mut io);
    assert_eq!(io.take(), [Recycle(3), Recv(Dir::Down)]);
}

#[test]
fn an_empty_buffer_ring_parks_the_direction_until_a_buffer_returns() {
    let mut io = Fake::new();
    let mut c = connected(&mut io);
    c.on_recv(ms(2), Dir::Up, ENOBUFS, None, &mut io);
    assert_eq!(io.take(), [WaitBuf(Dir::Up)]);
    assert!(
        !c.on_buf_available(Dir::Down, &mut io),
        "the other direction is not waiting"
    );
    assert!(c.on_buf_available(Dir::Up, &mut io));
    assert_eq!(io.take(), [Recv(Dir::Up)]);
    assert!(!c.on_buf_available(Dir::Up, &mut io), "only once");
}

#[test]
fn a_refused_connect_retries_another_server_then_gives_up_with_a_reset() {
    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, &mut io);
    for attempt in 1..=3 {
        c.on_connect(ms(attempt), ECONNREFUSED, &mut io);
        c.on_other();
    }
    assert_eq!(
        io.take(),
        [
            PickServer,
            Connect { retry: false },
            ConnectFailed,
            ClientGone,
            PickServer,
            Connect { retry: true },
            ConnectFailed,
            ClientGone,
            PickServer,
            Connect { retry: true },
            ConnectFailed,
            Refused(Refusal::NoServer),
            Reset(Side::Client),
            // The last connect's timeout is still to complete.
            CancelAll,
        ]
    );
    assert_eq!(c.attempts(), 3);
    assert_eq!(c.end(), Some(End::NoServer));
    assert_eq!(&c.termination(), b"SC");
    assert!(c.is_over());
}

#[test]
fn a_client_that_reset_during_connect_gets_no_further_attempt() {
    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, &mut io);
    io.take();
    io.gone = Some(End::ClientReset);
    c.on_connect(ms(3), ECONNREFUSED, &mut io);
    assert_eq!(io.take(), [ConnectFailed, ClientGone, CancelAll]);
    assert_eq!(c.end(), Some(End::ClientReset));
    // Its connect timeout is still to complete: not over before that.
    assert!(!c.is_over());
    c.on_other();
    assert!(c.is_over());
}

#[test]
fn full_servers_queue_the_client_until_room_or_the_queue_timeout() {
    let mut io = Fake::new();
    io.picks = [Pick::Full, Pick::Full, Pick::Server(1)].into();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, &mut io);
    assert_eq!(io.take(), [PickServer, Enqueue { first: true }]);
    assert_eq!(c.phase(), Phase::Queued);
    c.on_queue_turn(ms(500), &mut io);
    assert_eq!(io.take(), [Dequeue, PickServer, Enqueue { first: false }]);
    c.on_queue_turn(ms(600), &mut io);
    assert_eq!(io.take(), [Dequeue, PickServer, Connect { retry: false }]);
    assert_eq!(c.phase(), Phase::Connecting);

    let mut io = Fake::new();
    io.picks = [Pick::Full, Pick::Full].into();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, &mut io);
    c.on_queue_turn(ms(1000), &mut io);
    assert_eq!(
        io.take(),
        [
            PickServer,
            Enqueue { first: true },
            Dequeue,
            PickServer,
            Refused(Refusal::NoServer),
            Reset(Side::Client),
        ]
    );
    assert_eq!(c.end(), Some(End::QueueTimeout));
    assert_eq!(&c.termination(), b"sQ");
    assert_eq!(c.queue_time(), ms(1000));
    assert!(c.is_over());
}

#[test]
fn no_socket_waits_like_a_full_server_and_is_not_an_attempt() {
    let mut io = Fake::new();
    io.sockets = [Submitted::NoSocket].into();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, &mut io);
    assert_eq!(
        io.take(),
        [
            PickServer,
            Connect { retry: false },
            Enqueue { first: true }
        ]
    );
    assert_eq!(c.attempts(), 0);
    c.on_queue_turn(ms(100), &mut io);
    assert_eq!(io.take(), [Dequeue, PickServer, Connect { retry: false }]);
    assert_eq!(c.attempts(), 1);
}

#[test]
fn a_fin_while_a_retry_is_pending_still_gets_the_answer() {
    // The client sent its request and FIN (a half-close) while its first server refused;
    // a half-closed client is not gone, so the retry goes ahead and the answer comes back.
    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, &mut io);
    c.on_connect(ms(1), ECONNREFUSED, &mut io);
    c.on_other();
    c.on_connect(ms(2), 0, &mut io);
    c.on_other();
    io.take();
    c.on_recv(ms(3), Dir::Up, 0, None, &mut io);
    assert_eq!(io.take(), [ShutdownWrite(Side::Server)]);
    c.on_recv(ms(4), Dir::Down, 10, Some(1), &mut io);
    c.on_send(ms(4), Dir::Down, 10, &mut io);
    c.on_recv(ms(5), Dir::Down, 0, None, &mut io);
    assert!(c.is_over());
    assert_eq!(c.end(), Some(End::ClientClose));
    assert_eq!(c.bytes(Dir::Down), 10);
}

#[test]
fn a_reset_outranks_a_clean_close_and_resets_the_other_side() {
    let mut io = Fake::new();
    let mut c = connected(&mut io);
    c.on_recv(ms(2), Dir::Up, 0, None, &mut io);
    c.on_recv(ms(3), Dir::Down, ECONNRESET, None, &mut io);
    assert_eq!(
        io.take(),
        [ShutdownWrite(Side::Server), Reset(Side::Client)]
    );
    assert_eq!(c.end(), Some(End::ServerReset));
    assert_eq!(&c.termination(), b"SD");
    assert!(c.is_over());
}

#[test]
fn a_send_error_blames_the_sink() {
    let mut io = Fake::new();
    let mut c = connected(&mut io);
    c.on_recv(ms(2), Dir::Up, 10, Some(2), &mut io);
    io.take();
    c.on_send(ms(2), Dir::Up, -libc::EPIPE, &mut io);
    assert_eq!(io.take(), [Reset(Side::Client), CancelAll]);
    assert_eq!(c.end(), Some(End::ServerReset));
    // The down direction's recv completes cancelled; then it is over. The buffer it held
    // goes back when the worker frees the connection.
    assert!(!c.is_over());
    c.on_recv(ms(3), Dir::Down, ECANCELED, None, &mut io);
    assert!(c.is_over());
    assert_eq!(c.held_buf(Dir::Up), Some(buf(2, 0, 10)));
}

#[test]
fn an_idle_timeout_racing_a_completion_keeps_its_end_and_returns_the_buffer() {
    let mut io = Fake::new();
    let mut c = connected(&mut io);
    c.on_sweep(ms(29_000), &mut io);
    assert!(io.take().is_empty(), "not idle long enough");
    c.on_sweep(ms(30_001), &mut io);
    assert_eq!(io.take(), [CancelAll]);
    assert_eq!(c.end(), Some(End::ServerTimeout));
    // Bytes that arrived as the cancel went out: their buffer goes back, nothing is sent.
    c.on_recv(ms(30_001), Dir::Down, 500, Some(4), &mut io);
    c.on_recv(ms(30_002), Dir::Up, ECANCELED, None, &mut io);
    assert_eq!(io.take(), [Recycle(4)]);
    assert!(c.is_over());
    assert_eq!(c.end(), Some(End::ServerTimeout));
}

#[test]
fn the_idle_timeout_that_applies_depends_on_who_may_still_send() {
    let mut io = Fake::new();
    let mut c = connected(&mut io);
    // The server finished: only the client timeout (50 s) applies now.
    c.on_recv(ms(2), Dir::Down, 0, None, &mut io);
    c.on_sweep(ms(40_000), &mut io);
    assert_eq!(c.end(), Some(End::ServerClose));
    c.on_sweep(ms(50_003), &mut io);
    assert_eq!(c.end(), Some(End::ClientTimeout));
}

#[test]
fn auto_moves_bulk_to_splice_and_back_to_copy() {
    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Auto), BUF);
    c.start(ms(0), None, &mut io);
    c.on_connect(ms(1), 0, &mut io);
    c.on_other();
    io.take();
    // Two full buffers in a row move the direction to splice.
    for bid in 0..2 {
        c.on_recv(ms(2), Dir::Down, BUF as i32, Some(bid), &mut io);
        c.on_send(ms(2), Dir::Down, BUF as i32, &mut io);
    }
    assert_eq!(io.take().last(), Some(&PollIn(Dir::Down)));
    // A full pipe goes out at once; then the source is dry.
    io.splice_in = [Ok(Spliced::Moved(65536)), Ok(Spliced::WouldBlock)].into();
    c.on_poll(ms(3), Dir::Down, false, 1, &mut io);
    assert_eq!(
        io.take(),
        [
            TakePipe(Dir::Down),
            SpliceIn(Dir::Down),
            Bytes(Dir::Down, 65536),
            SpliceOut(Dir::Down, 65536),
            SpliceIn(Dir::Down),
            ReturnPipe(Dir::Down, true),
            PollIn(Dir::Down),
        ]
    );
    // Four short rounds in a row move it back to copy.
    for _ in 0..4 {
        io.splice_in = [Ok(Spliced::Moved(100)), Ok(Spliced::WouldBlock)].into();
        c.on_poll(ms(4), Dir::Down, false, 1, &mut io);
    }
    assert_eq!(io.take().last(), Some(&Recv(Dir::Down)));
    assert_eq!(c.bytes(Dir::Down), 2 * u64::from(BUF) + 65536 + 400);
}

#[test]
fn a_sink_without_room_keeps_the_bytes_in_the_pipe_and_polls_for_room() {
    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Splice), BUF);
    c.start(ms(0), None, &mut io);
    c.on_connect(ms(1), 0, &mut io);
    c.on_other();
    assert_eq!(io.take()[4..], [PollIn(Dir::Up), PollIn(Dir::Down)]);
    io.splice_in = [Ok(Spliced::Moved(65536))].into();
    io.splice_out = [Ok(Spliced::Moved(1000))].into();
    c.on_poll(ms(2), Dir::Up, false, 1, &mut io);
    assert_eq!(
        io.take(),
        [
            TakePipe(Dir::Up),
            SpliceIn(Dir::Up),
            Bytes(Dir::Up, 65536),
            SpliceOut(Dir::Up, 65536),
            PollOut(Dir::Up),
        ]
    );
    assert_eq!(c.pipe_in_use(Dir::Up), Some(true));
    // Room came: the rest goes, then the source is read again.
    c.on_poll(ms(3), Dir::Up, true, 4, &mut io);
    assert_eq!(
        io.take(),
        [
            SpliceOut(Dir::Up, 64536),
            SpliceIn(Dir::Up),
            ReturnPipe(Dir::Up, true),
            PollIn(Dir::Up),
        ]
    );
    // A failed poll for room blames the sink.
    io.splice_in = [Ok(Spliced::Moved(10))].into();
    io.splice_out = [Ok(Spliced::WouldBlock)].into();
    c.on_poll(ms(4), Dir::Up, false, 1, &mut io);
    io.take();
    c.on_poll(ms(5), Dir::Up, true, ECONNRESET, &mut io);
    assert_eq!(io.take(), [Reset(Side::Client), CancelAll]);
    assert_eq!(c.end(), Some(End::ServerReset));
}

#[test]
fn without_a_pipe_a_splice_direction_copies() {
    let mut io = Fake::new();
    io.pipes = false;
    let mut c = Conn::new(ms(0), policy(Forward::Splice), BUF);
    c.start(ms(0), None, &mut io);
    c.on_connect(ms(1), 0, &mut io);
    c.on_other();
    io.take();
    c.on_poll(ms(2), Dir::Down, false, 1, &mut io);
    assert_eq!(io.take(), [TakePipe(Dir::Down), Recv(Dir::Down)]);
}

#[test]
fn splice_sees_the_fin_and_passes_it_on() {
    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Splice), BUF);
    c.start(ms(0), None, &mut io);
    c.on_connect(ms(1), 0, &mut io);
    c.on_other();
    io.take();
    io.splice_in = [Ok(Spliced::Eof)].into();
    c.on_poll(ms(2), Dir::Down, false, 1, &mut io);
    assert_eq!(
        io.take(),
        [
            TakePipe(Dir::Down),
            SpliceIn(Dir::Down),
            ReturnPipe(Dir::Down, true),
            ShutdownWrite(Side::Client),
        ]
    );
    assert_eq!(c.end(), Some(End::ServerClose));
}

#[test]
fn the_preface_goes_first_with_the_early_bytes_and_a_fin() {
    let mut io = Fake::new();
    io.header = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec();
    io.early = Some((b"GET /".to_vec(), true));
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, &mut io);
    c.on_connect(ms(1), 0, &mut io);
    c.on_other();
    let calls = io.take();
    let sent = [io.header.clone(), b"GET /".to_vec()].concat();
    assert_eq!(
        calls[3..],
        [
            BuildPreface,
            Bytes(Dir::Up, 5),
            SendPreface(sent.clone()),
            Recv(Dir::Down)
        ]
    );
    // A short send: the rest goes; then the client's FIN is passed on.
    c.on_preface_sent(ms(2), 10, &mut io);
    assert_eq!(io.take(), [SendPreface(sent[10..].to_vec())]);
    c.on_preface_sent(ms(2), (sent.len() - 10) as i32, &mut io);
    assert_eq!(io.take(), [ShutdownWrite(Side::Server)]);
    assert_eq!(c.end(), Some(End::ClientClose));
}

#[test]
fn a_proxy_header_is_read_then_routed_and_connected() {
    let mut io = Fake::new();
    let plan = InspectPlan {
        proxy: true,
        hello: false,
        timeout: ms(5000),
        max: 1024,
    };
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), Some(plan), &mut io);
    assert_eq!(io.take(), [InspectRecv(1024)]);
    // The header arrives in two pieces, with the request behind it.
    let header = b"PROXY TCP4 192.0.2.1 192.0.2.10 40000 80\r\nGET / HTTP/1.0\r\n\r\n";
    let n = io.client_sends(&header[..10]);
    c.on_inspect_recv(ms(1), n, &mut io);
    assert_eq!(io.take(), [InspectRecv(1014)]);
    let n = io.client_sends(&header[10..]);
    c.on_inspect_recv(ms(2), n, &mut io);
    assert_eq!(
        io.take(),
        [Route(None), PickServer, Connect { retry: false }]
    );
    c.on_connect(ms(3), 0, &mut io);
    let calls = io.take();
    assert_eq!(calls[2], Bytes(Dir::Up, 18));
    assert_eq!(calls[3], SendPreface(b"GET / HTTP/1.0\r\n\r\n".to_vec()));
}

#[test]
fn a_bad_or_late_proxy_header_refuses_the_client() {
    let plan = InspectPlan {
        proxy: true,
        hello: false,
        timeout: ms(5000),
        max: 1024,
    };
    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), Some(plan), &mut io);
    let n = io.client_sends(b"GET / HTTP/1.0\r\n\r\n");
    c.on_inspect_recv(ms(1), n, &mut io);
    assert_eq!(c.end(), Some(End::BadProxy));
    assert!(c.reason().is_some());
    assert!(c.is_over());

    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), Some(plan), &mut io);
    c.on_sweep(ms(4999), &mut io);
    assert_eq!(c.end(), None);
    c.on_sweep(ms(5000), &mut io);
    assert_eq!(c.end(), Some(End::ProxyTimeout));
    assert_eq!(&c.termination(), b"cR");
    assert_eq!(
        io.take(),
        [InspectRecv(1024), Refused(Refusal::ProxyError), CancelAll]
    );
    // The read completes cancelled after the close: nothing more happens.
    c.on_inspect_recv(ms(5000), ECANCELED, &mut io);
    assert!(io.take().is_empty());
    assert!(c.is_over());
}

#[test]
fn a_late_client_hello_is_routed_without_a_name_once_its_read_is_cancelled() {
    let plan = InspectPlan {
        proxy: false,
        hello: true,
        timeout: ms(5000),
        max: 16384,
    };
    let mut io = Fake::new();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), Some(plan), &mut io);
    // The first bytes of a TLS record, then nothing.
    let n = io.client_sends(&[0x16, 0x03, 0x01, 0x02, 0x00]);
    c.on_inspect_recv(ms(1), n, &mut io);
    c.on_sweep(ms(5001), &mut io);
    assert_eq!(
        io.take(),
        [InspectRecv(16384), InspectRecv(16379), CancelAll]
    );
    c.on_inspect_recv(ms(5001), ECANCELED, &mut io);
    assert_eq!(
        io.take(),
        [Route(None), PickServer, Connect { retry: false }]
    );

    // No backend for a nameless client: refused as no_route.
    let mut io = Fake::new();
    io.route = None;
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), Some(plan), &mut io);
    let n = io.client_sends(b"not TLS at all");
    c.on_inspect_recv(ms(1), n, &mut io);
    assert_eq!(c.end(), Some(End::NoRoute));
    assert_eq!(io.take()[1..], [Route(None), Refused(Refusal::NoRoute)]);
}

#[test]
fn a_drained_server_ends_its_connections_after_the_drain_timeout() {
    let mut io = Fake::new();
    let mut c = connected(&mut io);
    assert!(c.on_server_removed(ms(100), Some(ms(1000)), &mut io));
    // Back in a later reload: the countdown stops.
    assert!(!c.on_server_removed(ms(500), None, &mut io));
    assert!(c.on_server_removed(ms(600), Some(ms(1000)), &mut io));
    assert!(c.on_server_removed(ms(1599), Some(ms(1000)), &mut io));
    assert!(!c.on_server_removed(ms(1600), Some(ms(1000)), &mut io));
    assert_eq!(c.end(), Some(End::Drained));
}

#[test]
fn shutting_down_closes_whatever_phase_and_counts_completions() {
    let mut io = Fake::new();
    io.picks = [Pick::Full].into();
    let mut c = Conn::new(ms(0), policy(Forward::Copy), BUF);
    c.start(ms(0), None, &mut io);
    c.shut_down(&mut io);
    assert_eq!(io.take(), [PickServer, Enqueue { first: true }, Dequeue]);
    assert_eq!(c.end(), Some(End::Shutdown));
    assert!(c.is_over(), "nothing was in flight");

    let mut io = Fake::new();
    let mut c = connected(&mut io);
    c.shut_down(&mut io);
    assert_eq!(io.take(), [CancelAll]);
    assert!(!c.is_over());
    c.on_recv(ms(9), Dir::Up, ECANCELED, None, &mut io);
    c.on_recv(ms(9), Dir::Down, ECANCELED, None, &mut io);
    assert!(c.is_over());
}
