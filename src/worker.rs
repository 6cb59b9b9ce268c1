// SPDX-License-Identifier: Apache-2.0

//! The connection worker: one thread that runs the blocking jobs (DNS + TCP + TLS handshake,
//! SNTP) so the main loop never blocks.
//!
//! The mailbox protocol (generations, cancel races) is `mqtts_core::firmware::slot`, tested on
//! the host. This file only supplies its shared word as an atomic, the result values beside
//! it, the wake-up semaphore and the thread body.

use mqtts_core::firmware::ca::CaSet;
use mqtts_core::firmware::shim::ShimStatus;
use mqtts_core::firmware::slot::{self, Cancelled, Finish, Job, JobStatus, SlotCell, SlotClient};
use mqtts_core::firmware::verify::VerifyFlags;
use zephyr::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, Ordering};
use zephyr::sys::sync::Semaphore;
use zephyr::time::Forever;

use crate::ffi::{self, SocketFd};

pub use mqtts_core::firmware::slot::Ticket;

/// The slot word (see `mqtts_core::firmware::slot`).
static SLOT: AtomicSlot = AtomicSlot(AtomicU32::new(slot::Word::INITIAL));
/// Roots to trust for the next connect job (set by the main loop before submitting).
static CA_MASK: AtomicU32 = AtomicU32::new(0);
/// Result of a succeeded connect job: the socket.
static RESULT_FD: AtomicI32 = AtomicI32::new(-1);
/// Result of a succeeded SNTP job: Unix time in seconds.
static RESULT_TIME: AtomicI64 = AtomicI64::new(0);
/// Result of a failed job: the shim status code.
static RESULT_STATUS: AtomicI32 = AtomicI32::new(0);
/// Wakes the worker; a limit of 1 folds repeated wake-ups into one.
static WAKE: Semaphore = Semaphore::new(0, 1);

/// The slot word over an atomic: Acquire loads, Release stores, AcqRel CAS, so the result
/// values written before a transition are visible to whoever observes it.
struct AtomicSlot(AtomicU32);

impl SlotCell for AtomicSlot {
    fn load(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
    fn compare_exchange(&self, current: u32, new: u32) -> Result<(), u32> {
        self.0
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }
    fn store(&self, new: u32) {
        self.0.store(new, Ordering::Release)
    }
}

/// The worker thread body: waits for a job, runs it, publishes the result. Never returns.
pub fn run() -> ! {
    log::info!("connection worker running");
    loop {
        // Forever cannot time out; any error just means "look at the slot again".
        let _ = WAKE.take(Forever);
        let Some(claim) = slot::claim(&SLOT) else {
            continue;
        };
        match claim.job() {
            Job::Connect => match ffi::connect(CaSet::from_bits(CA_MASK.load(Ordering::Relaxed))) {
                Ok(fd) => {
                    RESULT_FD.store(fd.raw(), Ordering::Relaxed);
                    if slot::finish(&SLOT, claim, true) == Finish::Discard {
                        // The main loop gave up on this attempt while we were connecting.
                        ffi::close(fd);
                    }
                }
                Err(e) => {
                    if e.status == ShimStatus::TlsVerify {
                        log_rejected_certificate(e.verify);
                    }
                    fail(claim, e.status)
                }
            },
            Job::TimeSync => match ffi::sntp_sync() {
                Ok(unix_s) => {
                    RESULT_TIME.store(unix_s, Ordering::Relaxed);
                    let _ = slot::finish(&SLOT, claim, true);
                }
                Err(status) => fail(claim, status),
            },
        }
    }
}

/// One line per cause, most actionable first (`mqtts_core::firmware::verify`). The core then
/// reports the attempt as `tls_verification`.
fn log_rejected_certificate(flags: VerifyFlags) {
    log::error!(
        "broker certificate rejected (Mbed TLS verify flags 0x{:08x}); nothing was sent",
        flags.bits()
    );
    for cause in flags.causes() {
        log::error!("  {:?}: {}", cause, cause.hint());
    }
}

fn fail(claim: slot::Claim, status: ShimStatus) {
    RESULT_STATUS.store(status.code(), Ordering::Relaxed);
    let _ = slot::finish(&SLOT, claim, false);
}

/// What became of a submitted job, with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPoll {
    /// Not finished yet.
    Pending,
    /// The connect job succeeded; the caller now owns the socket.
    Connected(SocketFd),
    /// The SNTP job succeeded and the clock is set to this Unix time (s).
    TimeSet(i64),
    /// The job failed.
    Failed(ShimStatus),
}

/// The main thread's handle on the worker. Exactly one exists (owned by the transport).
#[derive(Debug)]
pub struct WorkerClient {
    client: SlotClient,
}

impl WorkerClient {
    /// Creates the handle. Create exactly one, on the main thread.
    pub fn new() -> Self {
        Self {
            client: SlotClient::new(),
        }
    }

    /// Whether a new job would be accepted now.
    pub fn is_idle(&self) -> bool {
        self.client.is_idle(&SLOT)
    }

    /// Posts a connect job trusting `cas`, if the worker is idle.
    pub fn submit_connect(&mut self, cas: CaSet) -> Option<Ticket> {
        // Written before the Release CAS that publishes the job.
        CA_MASK.store(cas.bits(), Ordering::Relaxed);
        self.submit(Job::Connect)
    }

    /// Posts an SNTP job, if the worker is idle.
    pub fn submit_time_sync(&mut self) -> Option<Ticket> {
        self.submit(Job::TimeSync)
    }

    fn submit(&mut self, job: Job) -> Option<Ticket> {
        let ticket = self.client.submit(&SLOT, job).ok()?;
        WAKE.give();
        Some(ticket)
    }

    /// Checks a job; a finished job's result is handed over exactly once.
    pub fn poll(&mut self, ticket: Ticket) -> JobPoll {
        let status = self.client.poll(&SLOT, ticket);
        Self::result(ticket, status)
    }

    /// Reads the result of a job the slot just reported finished (before any new submit).
    fn result(ticket: Ticket, status: JobStatus) -> JobPoll {
        match (status, ticket.job()) {
            (JobStatus::Pending, _) => JobPoll::Pending,
            (JobStatus::Succeeded, Job::Connect) => {
                JobPoll::Connected(SocketFd::from_raw(RESULT_FD.load(Ordering::Relaxed)))
            }
            (JobStatus::Succeeded, Job::TimeSync) => {
                JobPoll::TimeSet(RESULT_TIME.load(Ordering::Relaxed))
            }
            (JobStatus::Failed, _) => JobPoll::Failed(
                ShimStatus::from_code(RESULT_STATUS.load(Ordering::Relaxed))
                    .unwrap_or(ShimStatus::Other),
            ),
            // Settled earlier (cannot happen with one client): report a failure, never wait.
            (JobStatus::Gone, _) => JobPoll::Failed(ShimStatus::Other),
        }
    }

    /// Abandons a job. A socket that is already (or later) connected for it is closed.
    pub fn cancel(&mut self, ticket: Ticket) {
        if let Cancelled::Finished(status) = self.client.cancel(&SLOT, ticket) {
            if let JobPoll::Connected(fd) = Self::result(ticket, status) {
                ffi::close(fd);
            }
        }
    }
}

impl Default for WorkerClient {
    fn default() -> Self {
        Self::new()
    }
}
