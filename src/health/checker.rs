//! The health checker thread: every active check of every target on one thread, with
//! non-blocking sockets and poll(2), plus the handle the rest of ringlb holds (passive
//! failures from workers, first-round wait, reload, stop).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::probe::{Plan, Probe, Started};
use super::state::{CheckResult, ServerHealth};
use super::{StateChange, Target};

use crate::fault::{self, Helper};
use crate::limits::HEALTH_IN_FLIGHT;
use crate::logging::event;
use crate::sys::EventFd;

/// Called on the health thread with every batch of state changes. The checker logs
/// nothing itself: the caller logs each change once it has taken effect.
pub type OnChange = Box<dyn FnMut(&[StateChange]) + Send>;

/// The handle on the health thread. Dropping it stops the thread.
pub struct Checker {
    reporter: PassiveReporter,
    first_round: Arc<FirstRound>,
    thread: Option<JoinHandle<()>>,
}

/// A cheap, cloneable way for worker threads to report failed connects to a target.
#[derive(Clone)]
pub struct PassiveReporter {
    tx: Sender<Control>,
    waker: Arc<Waker>,
}

enum Control {
    Passive(usize),
    /// New targets and the generation their verdicts carry.
    Replace(Vec<Slot>, u64),
    Stop,
}

impl Checker {
    /// Starts the `ringlb-health` thread. Every target is checked at once; `on_change` is
    /// first called when every first check is done (reporting every target), then whenever
    /// servers change state. Fails on a socket error or a regex that does not compile.
    pub fn spawn(targets: Vec<Target>, on_change: OnChange) -> io::Result<Checker> {
        let slots = slots(targets, Vec::new(), Instant::now())?;
        let waker = Arc::new(Waker::new()?);
        let (tx, rx) = crossbeam_channel::unbounded();
        let first_round = Arc::new(FirstRound::default());
        // Nothing to check: the round is done before the thread starts.
        let first_round_set = slots.is_empty();
        if first_round_set {
            first_round.set();
        }
        let engine = Engine {
            slots,
            rx,
            waker: Arc::clone(&waker),
            on_change,
            held: Vec::new(),
            first_round: Arc::clone(&first_round),
            first_round_set,
            generation: 0,
        };
        let thread = thread::Builder::new()
            .name("ringlb-health".into())
            .spawn(move || {
                let mut engine = engine;
                fault::supervise_with(Helper::Health, &mut engine, Engine::run, Engine::recover)
            })?;
        Ok(Checker {
            reporter: PassiveReporter { tx, waker },
            first_round,
            thread: Some(thread),
        })
    }

    /// Blocks until the first round has been reported (true) or `timeout` passed (false).
    pub fn wait_first_round(&self, timeout: Duration) -> bool {
        let (lock, cv) = (&self.first_round.done, &self.first_round.cv);
        let done = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (done, _) = cv
            .wait_timeout_while(done, timeout, |done| !*done)
            .unwrap_or_else(PoisonError::into_inner);
        *done
    }

    /// Reports a failed connect to `target` (index in the current targets). Never blocks.
    #[cfg(test)]
    pub fn passive_failure(&self, target: usize) {
        self.reporter.passive_failure(target);
    }

    /// A handle for worker threads, see [`PassiveReporter::passive_failure`].
    pub fn reporter(&self) -> PassiveReporter {
        self.reporter.clone()
    }

    /// Replaces the targets (a reload). `carried[i]`, when given, is the known state of
    /// `targets[i]`: it stays in that state and is checked after its usual interval.
    /// Targets without one start DOWN and are checked at once; their first results are
    /// reported together, as at start-up. Passive reports sent before this call may land
    /// on the new target of the same index.
    /// Verdicts about the new targets carry `generation` (those before carry 0).
    pub fn replace(
        &self,
        targets: Vec<Target>,
        carried: Vec<Option<bool>>,
        generation: u64,
    ) -> io::Result<()> {
        let slots = slots(targets, carried, Instant::now())?;
        self.reporter.send(Control::Replace(slots, generation))
    }

    /// Ends the health thread and waits for it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // An error means the thread is gone already; join tells the rest.
            let _ = self.reporter.send(Control::Stop);
            let _ = thread.join();
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl PassiveReporter {
    /// Reports a failed connect to `target`: a channel send, and a write to an eventfd only
    /// when the health thread is not already due to wake.
    pub fn passive_failure(&self, target: usize) {
        // Fails only once the health thread has stopped: nothing left to tell.
        let _ = self.send(Control::Passive(target));
    }

    fn send(&self, c: Control) -> io::Result<()> {
        self.tx
            .send(c)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "health checker stopped"))?;
        self.waker.wake();
        Ok(())
    }
}

/// Set once the first round has been reported.
#[derive(Default)]
struct FirstRound {
    done: Mutex<bool>,
    cv: Condvar,
}

impl FirstRound {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }
}

/// An eventfd that interrupts poll(2), written at most once per wake-up.
struct Waker {
    fd: EventFd,
    pending: AtomicBool,
}

impl Waker {
    fn new() -> io::Result<Waker> {
        Ok(Waker {
            fd: EventFd::new()?,
            pending: AtomicBool::new(false),
        })
    }

    fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            // Fails only when the counter is near u64::MAX: awake anyway.
            let _ = self.fd.write(1);
        }
    }

    /// Re-arms the waker; called before draining the control channel.
    fn reset(&self) {
        self.pending.swap(false, Ordering::AcqRel);
        // WouldBlock (nothing written since the last reset) is expected and harmless.
        let _ = self.fd.read();
    }
}

/// One target and its check.
struct Slot {
    target: Target,
    plan: Plan,
    health: ServerHealth,
    probe: Option<Probe>,
}

fn slots(targets: Vec<Target>, carried: Vec<Option<bool>>, now: Instant) -> io::Result<Vec<Slot>> {
    let mut out = Vec::with_capacity(targets.len());
    for (i, target) in targets.into_iter().enumerate() {
        let plan = Plan::new(&target.check, target.addr, target.send_proxy).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("health check of {}: {e}", target.label),
            )
        })?;
        let health = match carried.get(i).copied().flatten() {
            Some(up) => ServerHealth::carried(&target.label, &target.check, now, up),
            None => ServerHealth::new(&target.label, &target.check, now),
        };
        out.push(Slot {
            target,
            plan,
            health,
            probe: None,
        });
    }
    Ok(out)
}

/// The state of the health thread.
struct Engine {
    slots: Vec<Slot>,
    rx: Receiver<Control>,
    waker: Arc<Waker>,
    on_change: OnChange,
    /// First results waiting for the rest of their round.
    held: Vec<StateChange>,
    first_round: Arc<FirstRound>,
    first_round_set: bool,
    /// Generation of the current targets, copied into every `StateChange`.
    generation: u64,
}

impl Engine {
    /// After a fault: the checks in flight are dropped (their sockets closed) and start
    /// again; every server keeps its state meanwhile.
    fn recover(&mut self) {
        for slot in &mut self.slots {
            slot.probe = None;
        }
    }

    fn run(&mut self) {
        let mut pollfds: Vec<libc::pollfd> = Vec::new();
        let mut polled: Vec<usize> = Vec::new();
        loop {
            #[cfg(feature = "test-hooks")]
            crate::test_hooks::health_turn();
            let mut changes = Vec::new();
            let now = Instant::now();
            if !self.control(now, &mut changes) {
                return;
            }
            self.start_due(now, &mut changes);
            let timeout = self.poll_set(now, &mut pollfds, &mut polled);
            self.publish(changes);
            // SAFETY: `pollfds` is a live, initialised array of `pollfds.len()` entries,
            // each on an fd owned by the waker or a probe that outlives the call.
            let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as _, timeout) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    event!(error: "health checker: poll failed: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let mut changes = Vec::new();
            self.finish(Instant::now(), &pollfds, &polled, &mut changes);
            self.publish(changes);
        }
    }

    /// Starts the checks that are due and not already running, at most
    /// `HEALTH_IN_FLIGHT` at once (each holds a socket from the fds kept for checks);
    /// the others start as those finish.
    fn start_due(&mut self, now: Instant, changes: &mut Vec<StateChange>) {
        let mut in_flight = self.slots.iter().filter(|s| s.probe.is_some()).count();
        for i in 0..self.slots.len() {
            if in_flight >= HEALTH_IN_FLIGHT {
                return;
            }
            let slot = &mut self.slots[i];
            if slot.probe.is_none() && slot.health.next_check_at() <= now {
                in_flight += 1;
                match Probe::start(slot.target.addr, now) {
                    Started::InFlight(p) => slot.probe = Some(p),
                    Started::Done(r) => self.record(i, now, r, changes),
                }
            }
        }
    }

    /// Fills `pollfds` (the waker, then every check in flight, whose slot goes in
    /// `polled`) and returns the poll(2) timeout: until the next deadline or due check.
    fn poll_set(
        &self,
        now: Instant,
        pollfds: &mut Vec<libc::pollfd>,
        polled: &mut Vec<usize>,
    ) -> libc::c_int {
        pollfds.clear();
        polled.clear();
        pollfds.push(pollfd(self.waker.fd.as_raw_fd(), libc::POLLIN));
        let mut wake_at = None::<Instant>;
        for (i, slot) in self.slots.iter().enumerate() {
            let at = match &slot.probe {
                Some(p) => {
                    pollfds.push(pollfd(p.fd(), p.events()));
                    polled.push(i);
                    p.deadline(&slot.plan)
                }
                None => slot.health.next_check_at(),
            };
            wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
        }
        wake_at.map_or(-1, |at| poll_millis(at.saturating_duration_since(now)))
    }

    /// Moves on the checks poll(2) reported, then ends those past their deadline.
    fn finish(
        &mut self,
        now: Instant,
        pollfds: &[libc::pollfd],
        polled: &[usize],
        changes: &mut Vec<StateChange>,
    ) {
        for (pfd, &i) in pollfds[1..].iter().zip(polled) {
            if pfd.revents == 0 {
                continue;
            }
            let slot = &mut self.slots[i];
            if let Some(result) = slot.probe.as_mut().and_then(|p| p.advance(&slot.plan, now)) {
                slot.probe = None;
                self.record(i, now, result, changes);
            }
        }
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(probe) = &slot.probe else { continue };
            if probe.deadline(&slot.plan) <= now {
                let result = probe.timed_out(&slot.plan, now);
                slot.probe = None;
                self.record(i, now, result, changes);
            }
        }
    }

    /// Takes in control messages; false when the thread must end.
    fn control(&mut self, now: Instant, changes: &mut Vec<StateChange>) -> bool {
        self.waker.reset();
        loop {
            match self.rx.try_recv() {
                Ok(Control::Passive(i)) => {
                    let Some(slot) = self.slots.get_mut(i) else {
                        continue;
                    };
                    if let Some(t) = slot.health.record_passive_failure(now) {
                        let change = StateChange {
                            target: i,
                            generation: self.generation,
                            label: slot.target.label.clone(),
                            up: t.up,
                            reason: t.reason,
                        };
                        self.push(change, false, changes);
                    }
                }
                Ok(Control::Replace(slots, generation)) => {
                    // Changes of the old targets are meaningless under the new indices.
                    self.slots = slots;
                    self.generation = generation;
                    self.held.clear();
                    changes.clear();
                }
                Ok(Control::Stop) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn record(
        &mut self,
        i: usize,
        now: Instant,
        result: CheckResult,
        changes: &mut Vec<StateChange>,
    ) {
        let slot = &mut self.slots[i];
        if !result.passed() {
            slot.target.failures.fetch_add(1, Ordering::Relaxed);
        }
        let first = !slot.health.has_result();
        if let Some(t) = slot.health.record(now, &result) {
            let change = StateChange {
                target: i,
                generation: self.generation,
                label: slot.target.label.clone(),
                up: t.up,
                reason: t.reason,
            };
            self.push(change, first, changes);
        }
    }

    /// First results wait in `held` for their round; so do later changes of a target whose
    /// first result is still held, to keep each target's changes in order.
    fn push(&mut self, change: StateChange, first: bool, changes: &mut Vec<StateChange>) {
        if first || self.held.iter().any(|h| h.target == change.target) {
            self.held.push(change);
        } else {
            changes.push(change);
        }
    }

    /// Calls `on_change` with what can be reported now: held first results once every
    /// target has one, then the other changes.
    fn publish(&mut self, mut changes: Vec<StateChange>) {
        let round_done = self.slots.iter().all(|s| s.health.has_result());
        if round_done && !self.held.is_empty() {
            let mut batch = std::mem::take(&mut self.held);
            batch.append(&mut changes);
            changes = batch;
        }
        if !changes.is_empty() {
            (self.on_change)(&changes);
        }
        if round_done && !self.first_round_set {
            self.first_round_set = true;
            self.first_round.set();
        }
    }
}

fn pollfd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// A poll(2) timeout in milliseconds, rounded up so that a deadline has passed on waking.
fn poll_millis(d: Duration) -> libc::c_int {
    let ms = d.as_nanos().div_ceil(1_000_000);
    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
}
