// SPDX-License-Identifier: Apache-2.0

//! The connection worker: one thread that runs the blocking jobs (DNS + TCP + TLS handshake,
//! SNTP) so the main loop never blocks.
//!
//! Zephyr's TLS `connect()` performs the whole handshake before returning, even on a
//! non-blocking socket, and cannot be cancelled. So the main thread posts a job into a single
//! slot and polls it; the worker runs it and posts the result back.
//!
//! The slot is one atomic word, `generation << 8 | phase`, so every transition is a single
//! compare-and-swap (portable-atomic provides CAS on Cortex-M0+ too):
//!
//! ```text
//!   main:   Idle(g) --submit--> Requested(g+1)
//!   worker: Requested(g) ------> Running(g) ---> Done(g) | Failed(g)
//!   main:   Done(g) | Failed(g) --take result--> Idle(g)
//!   main:   Requested(g) --cancel--> Idle(g)            (worker never saw it)
//!   main:   Running(g)   --cancel--> Cancelled(g)
//!   worker: Cancelled(g) --close the new socket--> Idle(g)
//! ```
//!
//! Only the main thread submits, takes and cancels ([`WorkerClient`] is not `Clone`); only the
//! worker moves a job out of `Requested` and `Running`. A result value (socket or time) is
//! stored before the `Done` transition with release ordering and read after observing it with
//! acquire ordering.

use zephyr::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU8, Ordering};
use zephyr::sys::sync::Semaphore;
use zephyr::time::Forever;

use crate::ffi::{self, ShimStatus, SocketFd};

const PHASE_IDLE: u32 = 0;
const PHASE_REQUESTED: u32 = 1;
const PHASE_RUNNING: u32 = 2;
const PHASE_DONE: u32 = 3;
const PHASE_FAILED: u32 = 4;
const PHASE_CANCELLED: u32 = 5;

const JOB_CONNECT: u8 = 1;
const JOB_SNTP: u8 = 2;

/// The slot word: generation (24 bits, wrapping) and phase (8 bits).
static SLOT: AtomicU32 = AtomicU32::new(PHASE_IDLE);
/// Kind of the requested job, written before `Requested` is published.
static JOB: AtomicU8 = AtomicU8::new(0);
/// Result of a `Done` connect job: the socket.
static RESULT_FD: AtomicI32 = AtomicI32::new(-1);
/// Result of a `Done` SNTP job: the Unix time.
static RESULT_TIME: AtomicI64 = AtomicI64::new(0);
/// Result of a `Failed` job: the shim status code.
static RESULT_STATUS: AtomicI32 = AtomicI32::new(0);
/// Wakes the worker; a count limit of 1 folds repeated wake-ups into one.
static WAKE: Semaphore = Semaphore::new(0, 1);

const fn pack(generation: u32, phase: u32) -> u32 {
    (generation << 8) | (phase & 0xff)
}

const fn generation_of(word: u32) -> u32 {
    word >> 8
}

const fn phase_of(word: u32) -> u32 {
    word & 0xff
}

/// Starts the worker thread. Call once, after logging is set up.
pub fn start() {
    ffi::spawn_worker();
}

/// The worker thread body: waits for a job, runs it, posts the result. Never returns.
pub fn run() -> ! {
    log::info!("connection worker running");
    loop {
        // Forever cannot time out; any other error just means "look at the slot again".
        let _ = WAKE.take(Forever);

        let word = SLOT.load(Ordering::Acquire);
        if phase_of(word) != PHASE_REQUESTED {
            continue;
        }
        let generation = generation_of(word);
        if SLOT
            .compare_exchange(
                word,
                pack(generation, PHASE_RUNNING),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // Cancelled (or replaced) before we started.
            continue;
        }

        let running = pack(generation, PHASE_RUNNING);
        match JOB.load(Ordering::Acquire) {
            JOB_CONNECT => match ffi::connect() {
                Ok(fd) => {
                    RESULT_FD.store(fd.raw(), Ordering::Relaxed);
                    if !publish(running, PHASE_DONE) {
                        // The main thread gave up on this attempt while we were connecting.
                        ffi::close(fd);
                        finish_cancelled(generation);
                    }
                }
                Err(status) => fail(running, generation, status),
            },
            JOB_SNTP => match ffi::sntp_sync() {
                Ok(unix_s) => {
                    RESULT_TIME.store(unix_s, Ordering::Relaxed);
                    if !publish(running, PHASE_DONE) {
                        finish_cancelled(generation);
                    }
                }
                Err(status) => fail(running, generation, status),
            },
            _ => fail(running, generation, ShimStatus::Other),
        }
    }
}

/// Moves `Running(g)` to `phase(g)`; false if the main thread cancelled in the meantime.
fn publish(running: u32, phase: u32) -> bool {
    SLOT.compare_exchange(
        running,
        pack(generation_of(running), phase),
        Ordering::Release,
        Ordering::Relaxed,
    )
    .is_ok()
}

fn fail(running: u32, generation: u32, status: ShimStatus) {
    RESULT_STATUS.store(status_code(status), Ordering::Relaxed);
    if !publish(running, PHASE_FAILED) {
        finish_cancelled(generation);
    }
}

fn finish_cancelled(generation: u32) {
    // Only the worker leaves `Cancelled`, so a plain store is enough.
    SLOT.store(pack(generation, PHASE_IDLE), Ordering::Release);
}

fn status_code(status: ShimStatus) -> i32 {
    match status {
        ShimStatus::WouldBlock => 1,
        ShimStatus::Timeout => 2,
        ShimStatus::Refused => 3,
        ShimStatus::TlsVerify => 4,
        ShimStatus::TlsHandshake => 5,
        ShimStatus::Dns => 6,
        ShimStatus::Closed => 7,
        ShimStatus::NetDown => 8,
        ShimStatus::NoMemory => 9,
        ShimStatus::Config => 10,
        ShimStatus::Other => 11,
    }
}

fn status_from_code(code: i32) -> ShimStatus {
    match code {
        1 => ShimStatus::WouldBlock,
        2 => ShimStatus::Timeout,
        3 => ShimStatus::Refused,
        4 => ShimStatus::TlsVerify,
        5 => ShimStatus::TlsHandshake,
        6 => ShimStatus::Dns,
        7 => ShimStatus::Closed,
        8 => ShimStatus::NetDown,
        9 => ShimStatus::NoMemory,
        10 => ShimStatus::Config,
        _ => ShimStatus::Other,
    }
}

/// A blocking job the worker can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// DNS + TCP connect + TLS handshake to the configured broker.
    Connect,
    /// One SNTP query, then set the realtime clock.
    TimeSync,
}

/// The worker did not take a new job because it is still busy with (or cleaning up) another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Identifies one submitted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u32);

/// What became of a submitted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPoll {
    /// Not finished yet.
    Pending,
    /// The connect job succeeded; the caller now owns the socket.
    Connected(SocketFd),
    /// The SNTP job succeeded and the clock is set to this Unix time.
    TimeSet(i64),
    /// The job failed.
    Failed(ShimStatus),
}

/// The main thread's handle on the worker slot. Exactly one must exist.
#[derive(Debug)]
pub struct WorkerClient {
    next_generation: u32,
}

impl WorkerClient {
    /// Creates the handle. Create exactly one, on the main thread.
    pub fn new() -> Self {
        Self { next_generation: 1 }
    }

    /// Whether a new job would be accepted now.
    pub fn is_idle(&self) -> bool {
        phase_of(SLOT.load(Ordering::Acquire)) == PHASE_IDLE
    }

    /// Posts a job if the worker is idle.
    pub fn submit(&mut self, job: Job) -> Result<Ticket, Busy> {
        let word = SLOT.load(Ordering::Acquire);
        if phase_of(word) != PHASE_IDLE {
            return Err(Busy);
        }
        let generation = self.next_generation & 0x00ff_ffff;
        self.next_generation = self.next_generation.wrapping_add(1);
        JOB.store(
            match job {
                Job::Connect => JOB_CONNECT,
                Job::TimeSync => JOB_SNTP,
            },
            Ordering::Relaxed,
        );
        // Release: the job kind is visible to the worker once it sees `Requested`.
        SLOT.compare_exchange(
            word,
            pack(generation, PHASE_REQUESTED),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .map_err(|_| Busy)?;
        WAKE.give();
        Ok(Ticket(generation))
    }

    /// Checks a job. A finished job's result is handed over exactly once and the slot becomes
    /// idle again.
    pub fn poll(&mut self, ticket: Ticket) -> JobPoll {
        let word = SLOT.load(Ordering::Acquire);
        if generation_of(word) != ticket.0 {
            // Cannot happen with a single client; treat as still pending rather than guess.
            return JobPoll::Pending;
        }
        match phase_of(word) {
            PHASE_DONE => {
                let result = match JOB.load(Ordering::Relaxed) {
                    JOB_CONNECT => {
                        JobPoll::Connected(SocketFd::from_raw(RESULT_FD.load(Ordering::Relaxed)))
                    }
                    _ => JobPoll::TimeSet(RESULT_TIME.load(Ordering::Relaxed)),
                };
                SLOT.store(pack(ticket.0, PHASE_IDLE), Ordering::Release);
                result
            }
            PHASE_FAILED => {
                let status = status_from_code(RESULT_STATUS.load(Ordering::Relaxed));
                SLOT.store(pack(ticket.0, PHASE_IDLE), Ordering::Release);
                JobPoll::Failed(status)
            }
            _ => JobPoll::Pending,
        }
    }

    /// Abandons a job. A socket that is already (or later) connected for it is closed.
    pub fn cancel(&mut self, ticket: Ticket) {
        let word = SLOT.load(Ordering::Acquire);
        if generation_of(word) != ticket.0 {
            return;
        }
        let phase = phase_of(word);
        // Not started by the worker yet: withdraw it. If the worker wins that race, the job is
        // Running (or already finished) and is handled below.
        if phase == PHASE_REQUESTED
            && SLOT
                .compare_exchange(
                    word,
                    pack(ticket.0, PHASE_IDLE),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            return;
        }
        match phase {
            PHASE_REQUESTED | PHASE_RUNNING => self.cancel_running(ticket),
            PHASE_DONE | PHASE_FAILED => {
                if let JobPoll::Connected(fd) = self.poll(ticket) {
                    ffi::close(fd);
                }
            }
            _ => {}
        }
    }

    fn cancel_running(&mut self, ticket: Ticket) {
        let running = pack(ticket.0, PHASE_RUNNING);
        if SLOT
            .compare_exchange(
                running,
                pack(ticket.0, PHASE_CANCELLED),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // It finished in the meantime: take the result and drop it.
            if let JobPoll::Connected(fd) = self.poll(ticket) {
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
