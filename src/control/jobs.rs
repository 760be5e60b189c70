//! Work the control socket hands to the control thread, which owns the workers: a reload,
//! and closing one server's established connections on every worker. The outcome goes
//! back to the socket's client as the answer.

use std::time::Duration;

use crossbeam_channel::{select, Sender};

use super::{Control, ReloadError};
use crate::logging::event;
use crate::registry::lock;
use crate::worker::Command;

/// Work for the control thread, with where its outcome goes.
pub struct Job {
    pub kind: JobKind,
    /// Who asked, for the log.
    pub who: String,
    pub reply: Sender<Result<String, JobError>>,
}

/// Why a job did not do what it asked.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("ringlb is stopping")]
    Stopping,
    #[error("no server {backend}/{server}")]
    NoServer { backend: String, server: String },
    #[error("reload #{number} failed: {source}")]
    Reload { number: u64, source: ReloadError },
}

pub enum JobKind {
    Reload,
    ShutdownSessions { backend: String, server: String },
}

impl Control {
    /// A job from the control socket.
    pub(super) fn run_job(&mut self, job: Job) {
        let outcome = match job.kind {
            JobKind::Reload => {
                event!(notice: "reload asked by {}", job.who);
                self.reload()
            }
            JobKind::ShutdownSessions { backend, server } => {
                self.shutdown_sessions(&backend, &server, &job.who)
            }
        };
        let _ = job.reply.send(outcome);
    }

    /// Closes `backend/server`'s established connections on every worker.
    fn shutdown_sessions(
        &self,
        backend: &str,
        server: &str,
        who: &str,
    ) -> Result<String, JobError> {
        let known = lock(&self.registry)
            .config()
            .backends
            .iter()
            .any(|b| b.name == backend && b.servers.iter().any(|s| s.name == server));
        if !known {
            return Err(JobError::NoServer {
                backend: backend.to_string(),
                server: server.to_string(),
            });
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        self.broadcast(|| Command::KillServer {
            backend: backend.to_string(),
            server: server.to_string(),
            reply: tx.clone(),
        });
        let deadline = crossbeam_channel::after(Duration::from_secs(2));
        let mut closed = 0;
        for _ in &self.workers {
            select! {
                recv(rx) -> n => closed += n.unwrap_or(0),
                recv(deadline) -> _ => break,
            }
        }
        event!(notice: "admin {who}: closing {closed} connections of {backend}/{server}");
        Ok(format!(
            "closing {closed} connections of {backend}/{server}\n"
        ))
    }
}
