//! The deadlines of one stats connection, enforced on its socket. hyper's own
//! `header_read_timeout` starts when it begins waiting for a request, so it cannot tell a
//! keep-alive connection at rest from a client trickling a header, and it bounds no write;
//! this adapter does both: the request head must arrive within `header` of its first byte
//! (of the accept, for a new connection), a kept-alive connection may rest for `idle`, and
//! a write that stalls must complete within `write`. Body reads are bounded by the service,
//! which knows when it wants one.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request (or the accept) to the end of its head.
    pub header: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle: Duration,
    /// From the moment a write cannot proceed to the moment everything written so far has
    /// left.
    pub write: Duration,
}

/// Where a connection is in its request cycle: told by the adapter (bytes arrived), by the
/// service (a request began) and by the response body (it was sent).
pub struct Cycle {
    phase: Cell<Phase>,
    timeouts: Timeouts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head.
    Head { until: Instant },
    /// A response is prepared or written; the service bounds any body read itself.
    Busy,
    /// Between requests.
    Idle { until: Instant },
}

impl Cycle {
    /// A new connection: its first request head must arrive within `header`.
    pub fn new(timeouts: Timeouts) -> Rc<Cycle> {
        Rc::new(Cycle {
            phase: Cell::new(Phase::Head {
                until: Instant::now() + timeouts.header,
            }),
            timeouts,
        })
    }

    pub fn request_started(&self) {
        self.phase.set(Phase::Busy);
    }

    pub fn response_sent(&self) {
        self.phase.set(Phase::Idle {
            until: Instant::now() + self.timeouts.idle,
        });
    }

    fn bytes_arrived(&self) {
        if let Phase::Idle { .. } = self.phase.get() {
            self.phase.set(Phase::Head {
                until: Instant::now() + self.timeouts.header,
            });
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        match self.phase.get() {
            Phase::Head { until } | Phase::Idle { until } => Some(until),
            Phase::Busy => None,
        }
    }
}

/// A socket whose reads and writes fail with `TimedOut` past the deadlines of its `Cycle`.
pub struct TimedIo<T> {
    io: T,
    cycle: Rc<Cycle>,
    read_timer: Option<Pin<Box<Sleep>>>,
    /// Set when a write could not proceed; cleared when a flush completes.
    write_deadline: Option<Instant>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<T> TimedIo<T> {
    pub fn new(io: T, cycle: Rc<Cycle>) -> TimedIo<T> {
        TimedIo {
            io,
            cycle,
            read_timer: None,
            write_deadline: None,
            write_timer: None,
        }
    }

    /// A write is pending: fails once it has been stalled for the write timeout.
    fn write_stalled<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let deadline = *self
            .write_deadline
            .get_or_insert_with(|| Instant::now() + self.cycle.timeouts.write);
        if expired(&mut self.write_timer, deadline, cx) {
            Poll::Ready(Err(timed_out("write")))
        } else {
            Poll::Pending
        }
    }
}

/// Whether `deadline` has passed; otherwise the task is woken when it does.
fn expired(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    timer.as_mut().poll(cx).is_ready()
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("stats connection: {what} timeout"),
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.cycle.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.cycle.read_deadline() {
                Some(deadline) if expired(&mut this.read_timer, deadline, cx) => {
                    Poll::Ready(Err(timed_out("read")))
                }
                _ => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.write_stalled(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.write_stalled(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                this.write_deadline = None;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.write_stalled(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.write_stalled(cx),
            ready => ready,
        }
    }
}

/// A response body that tells its connection's `Cycle` when hyper is done with it, which
/// is when the response has been handed to the socket and the connection rests.
pub struct ReplyBody {
    inner: Full<Bytes>,
    cycle: Rc<Cycle>,
}

impl ReplyBody {
    pub fn new(body: impl Into<Bytes>, cycle: Rc<Cycle>) -> ReplyBody {
        ReplyBody {
            inner: Full::new(body.into()),
            cycle,
        }
    }
}

impl Drop for ReplyBody {
    fn drop(&mut self) {
        self.cycle.response_sent();
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use tokio::net::TcpStream;

    use super::*;

    const SHORT: Timeouts = Timeouts {
        header: Duration::from_millis(200),
        idle: Duration::from_millis(600),
        write: Duration::from_millis(200),
    };

    /// Runs `f` on a current-thread runtime with one end of a loopback connection wrapped
    /// in `TimedIo`; the other end is returned to `f` as a blocking std socket.
    fn with_pair<F, Fut>(f: F)
    where
        F: FnOnce(TimedIo<TcpStream>, Rc<Cycle>, std::net::TcpStream) -> Fut,
        Fut: Future<Output = ()>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (ours, _) = listener.accept().unwrap();
            ours.set_nonblocking(true).unwrap();
            let ours = TcpStream::from_std(ours).unwrap();
            let cycle = Cycle::new(SHORT);
            f(TimedIo::new(ours, cycle.clone()), cycle, peer).await;
        });
    }

    async fn read(io: &mut TimedIo<TcpStream>) -> io::Result<usize> {
        let mut bytes = [0u8; 64];
        std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut bytes);
            Pin::new(&mut *io)
                .poll_read(cx, &mut buf)
                .map_ok(|()| buf.filled().len())
        })
        .await
    }

    #[test]
    fn a_silent_new_connection_times_out_after_the_header_timeout() {
        with_pair(|mut io, _, peer| async move {
            let start = Instant::now();
            let e = read(&mut io).await.unwrap_err();
            drop(peer);
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            let took = start.elapsed();
            assert!(took >= SHORT.header && took < SHORT.idle, "{took:?}");
        });
    }

    #[test]
    fn a_resting_connection_gets_the_idle_timeout_and_a_new_request_the_header_timeout() {
        with_pair(|mut io, cycle, mut peer| async move {
            cycle.request_started();
            // Busy: no read deadline while the service works.
            tokio::time::sleep(SHORT.header * 2).await;
            cycle.response_sent();
            let start = Instant::now();
            peer.write_all(b"G").unwrap();
            tokio::time::sleep(SHORT.header / 2).await;
            assert_eq!(read(&mut io).await.unwrap(), 1);
            // The first byte of the next request starts the header timeout.
            let e = read(&mut io).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            let took = start.elapsed();
            assert!(took >= SHORT.header && took < SHORT.idle, "{took:?}");

            cycle.response_sent();
            let start = Instant::now();
            let e = read(&mut io).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(start.elapsed() >= SHORT.idle, "{:?}", start.elapsed());
        });
    }

    #[test]
    fn a_write_the_peer_never_reads_fails_after_the_write_timeout() {
        with_pair(|mut io, _, mut peer| async move {
            let chunk = vec![7u8; 64 * 1024];
            let start = Instant::now();
            let e = loop {
                let written =
                    std::future::poll_fn(|cx| Pin::new(&mut io).poll_write(cx, &chunk)).await;
                match written {
                    Ok(_) => assert!(start.elapsed() < Duration::from_secs(5), "never stalled"),
                    Err(e) => break e,
                }
            };
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            // The peer reading clears the stall, and a flush ends the write deadline.
            peer.set_nonblocking(true).unwrap();
            let mut sink = vec![0u8; 1 << 20];
            while peer.read(&mut sink).is_ok_and(|n| n > 0) {}
            std::future::poll_fn(|cx| Pin::new(&mut io).poll_flush(cx))
                .await
                .unwrap();
            assert!(io.write_deadline.is_none());
        });
    }
}
