//! The `ringlb-ctl` thread: the control socket (mode 0600), one command per connection,
//! answered in turn. Reads and writes are bounded in size and time, so a client that
//! stalls holds the socket for at most `IO_TIMEOUT`. Shows and admin settings are done
//! here; a reload and closing a server's connections go to the control thread, which owns
//! the workers, and their outcome comes back as the answer.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;
use socket2::{Domain, SockAddr, Socket, Type};

use super::{parse, show, ParseError, Request, MAX_LINE};
use crate::control::{Job, JobError, JobKind};
use crate::fault::{self, Helper};
use crate::logging::event;
use crate::registry::{self, AdminError};
use crate::stats::{self, Sources};

/// How long one client may take to send its command or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reload or closing connections may take before the answer says so.
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a command was refused: the text after `ERROR ` in the answer.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("command over {max} bytes", max = MAX_LINE)]
    TooLong,
    #[error("reading the command: {0}")]
    Read(io::Error),
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Job(#[from] JobError),
    #[error("no outcome within {0:?}")]
    NoOutcome(Duration),
}

/// The control socket's file: removed when this is dropped (at exit), unless another
/// process has put its own socket there since.
pub struct SocketFile {
    path: PathBuf,
    inode: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the control socket at `path` and starts its thread. A socket file left by a
/// ringlb that is gone is replaced; one that another process answers on is an error.
pub fn serve(path: &Path, sources: Arc<Sources>, jobs: Sender<Job>) -> io::Result<SocketFile> {
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{}: another process answers there", path.display()),
        ));
    }
    let _ = std::fs::remove_file(path);
    let listener = bind_private(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let inode = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)?.ino()
    };
    let state = Ctl {
        listener,
        path: path.to_path_buf(),
        sources,
        jobs,
    };
    thread::Builder::new()
        .name("ringlb-ctl".into())
        .spawn(move || fault::supervise(Helper::Ctl, state, Ctl::run))?;
    Ok(SocketFile {
        path: path.to_path_buf(),
        inode,
    })
}

/// A listening unix socket at `path` whose file is created with mode 0600: Linux gives
/// the file the socket's own inode mode (less the umask), which `fchmod` sets before
/// `bind`, so there is no moment when another user could connect. Only the service's own
/// user may drive it (root bypasses this anyway).
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_cloexec(true)?;
    nix::sys::stat::fchmod(&socket, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(128)?;
    Ok(UnixListener::from(std::os::fd::OwnedFd::from(socket)))
}

struct Ctl {
    listener: UnixListener,
    path: PathBuf,
    sources: Arc<Sources>,
    jobs: Sender<Job>,
}

impl Ctl {
    fn run(&mut self) {
        let mut backoff = Duration::from_millis(10);
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    backoff = Duration::from_millis(10);
                    self.answer(stream);
                }
                Err(e) => {
                    // fd exhaustion must neither spin nor end the socket.
                    event!(warning: "control socket {}: accept: {e}", self.path.display());
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    fn answer(&self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let who = peer(&stream);
        let mut line = String::new();
        let read = BufReader::new((&stream).take(MAX_LINE as u64 + 1)).read_line(&mut line);
        let answer = match read {
            Ok(_) if line.len() > MAX_LINE => Err(Refused::TooLong),
            Ok(_) => parse(line.trim_end())
                .map_err(Refused::from)
                .and_then(|c| self.execute(c, &who)),
            Err(e) => Err(Refused::Read(e)),
        };
        let mut out = &stream;
        let _ = match answer {
            Ok(body) => write!(out, "OK\n{body}"),
            Err(why) => writeln!(out, "ERROR {why}"),
        };
    }

    fn execute(&self, cmd: super::Command, who: &str) -> Result<String, Refused> {
        let report = || stats::report_now(&self.sources);
        match cmd.request {
            Request::ShowInfo => Ok(show::info(&report(), cmd.json)),
            Request::ShowFrontends => Ok(show::frontends(&report(), cmd.json)),
            Request::ShowServers => Ok(show::servers(&report(), cmd.json)),
            Request::ShowVrrp => Ok(show::vrrp(&report(), cmd.json)),
            Request::ShowAnnounce => Ok(show::announce(&report(), cmd.json)),
            Request::SetState {
                backend,
                server,
                state,
            } => self.set(&backend, &server, Some(state), None, who, cmd.json),
            Request::SetWeight {
                backend,
                server,
                weight,
            } => self.set(&backend, &server, None, Some(weight), who, cmd.json),
            Request::ShutdownSessions { backend, server } => {
                self.job(JobKind::ShutdownSessions { backend, server }, who)
            }
            Request::Reload => self.job(JobKind::Reload, who),
        }
    }

    fn set(
        &self,
        backend: &str,
        server: &str,
        state: Option<crate::table::AdminState>,
        weight: Option<u32>,
        who: &str,
        json: bool,
    ) -> Result<String, Refused> {
        let (effective, admin, weight) = registry::lock(&self.sources.registry)
            .set_admin(backend, server, state, weight, who)?;
        event!(
            notice: "admin {who}: {backend}/{server} set to {}, weight {weight}",
            admin.as_str()
        );
        Ok(if json {
            format!(
                "{}\n",
                serde_json::json!({
                    "backend": backend, "server": server, "admin": admin.as_str(),
                    "state": effective.as_str(), "weight": weight,
                })
            )
        } else {
            format!(
                "{backend}/{server}: admin {}, state {}, weight {weight}\n",
                admin.as_str(),
                effective.as_str()
            )
        })
    }

    fn job(&self, kind: JobKind, who: &str) -> Result<String, Refused> {
        let (reply, outcome) = crossbeam_channel::bounded(1);
        self.jobs
            .send(Job {
                kind,
                who: who.to_string(),
                reply,
            })
            .map_err(|_| JobError::Stopping)?;
        let done = outcome
            .recv_timeout(JOB_TIMEOUT)
            .map_err(|_| Refused::NoOutcome(JOB_TIMEOUT))?;
        Ok(done?)
    }
}

/// Who is on the other end: `ctl uid=U pid=P` (SO_PEERCRED).
fn peer(stream: &UnixStream) -> String {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    match getsockopt(stream, PeerCredentials) {
        Ok(c) => format!("ctl uid={} pid={}", c.uid(), c.pid()),
        Err(_) => "ctl".to_string(),
    }
}
