//! The one-job mailbox between the firmware's main loop and its connection worker thread.
//!
//! Zephyr's TLS `connect()` runs the whole handshake before returning and cannot be cancelled,
//! so a worker thread runs the blocking jobs (DNS + TCP + TLS, SNTP) and the main loop only
//! looks at a slot. The slot is one 32-bit word, `generation << 8 | job << 4 | phase`, changed
//! only by compare-and-swap or by a store from the side that owns the current phase:
//!
//! ```text
//!   main:   Idle(g) ------------ submit --------> Requested(g+1)
//!   worker: Requested(g) ------- claim ---------> Running(g)
//!   worker: Running(g) --------- finish --------> Done(g) | Failed(g)
//!   main:   Done(g) | Failed(g)  poll / cancel --> Idle(g)          (result handed over once)
//!   main:   Requested(g) ------- cancel --------> Idle(g)          (worker never saw it)
//!   main:   Running(g) --------- cancel --------> Cancelled(g)
//!   worker: Cancelled(g) ------- finish --------> Idle(g)          (worker drops its result)
//! ```
//!
//! Only the main loop submits, polls and cancels (one [`SlotClient`]); only the worker claims
//! and finishes. Each operation does one load and at most two CAS or stores; a failed CAS
//! means the other side moved first, and the operation decides again from the word it saw.
//! Results (a socket, a time) travel beside the word: the worker writes them before `finish`
//! publishes `Done`, the client reads them right after `poll` or `cancel` reports a finished
//! job (the worker cannot write again before the next `submit`).
//!
//! This module holds the protocol; the firmware supplies the word as a [`SlotCell`] over an
//! atomic (Acquire loads, Release stores, AcqRel CAS) and does the thread and socket work.

/// The shared word. The firmware implements this over an `AtomicU32`; tests over a `Cell`.
pub trait SlotCell {
    /// Reads the word (Acquire).
    fn load(&self) -> u32;
    /// Replaces `current` with `new` if the word is still `current` (AcqRel); else returns
    /// the word found.
    fn compare_exchange(&self, current: u32, new: u32) -> Result<(), u32>;
    /// Writes the word (Release). Only used by the side that owns the current phase.
    fn store(&self, new: u32);
}

/// A blocking job the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// DNS + TCP connect + TLS handshake to the broker.
    Connect,
    /// One SNTP query, then set the realtime clock.
    TimeSync,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No job; a new one may be submitted.
    Idle,
    /// Submitted, not yet seen by the worker.
    Requested,
    /// The worker runs it.
    Running,
    /// Finished with a result.
    Done,
    /// Finished with an error status.
    Failed,
    /// Abandoned while running; the worker cleans up when it finishes.
    Cancelled,
}

const PHASES: [Phase; 6] = [
    Phase::Idle,
    Phase::Requested,
    Phase::Running,
    Phase::Done,
    Phase::Failed,
    Phase::Cancelled,
];

/// Generations are 24 bits and wrap.
const GENERATION_MASK: u32 = 0x00ff_ffff;

/// The decoded slot word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    /// Which submission this is (24 bits, wrapping).
    pub generation: u32,
    /// The job, `None` only in the initial idle word.
    pub job: Option<Job>,
    /// Where the job is.
    pub phase: Phase,
}

impl Word {
    /// The slot's initial value.
    pub const INITIAL: u32 = 0;

    /// Packs into the shared representation.
    pub fn pack(self) -> u32 {
        let job = match self.job {
            None => 0,
            Some(Job::Connect) => 1,
            Some(Job::TimeSync) => 2,
        };
        let phase = PHASES.iter().position(|&p| p == self.phase).unwrap_or(0) as u32;
        ((self.generation & GENERATION_MASK) << 8) | (job << 4) | phase
    }

    /// Decodes a packed word. Only this module writes the word; a value it cannot have written
    /// decodes as `Cancelled`, which makes the client wait rather than take a result.
    pub fn unpack(raw: u32) -> Word {
        let job = match (raw >> 4) & 0xf {
            1 => Some(Job::Connect),
            2 => Some(Job::TimeSync),
            _ => None,
        };
        let phase = PHASES
            .get((raw & 0xf) as usize)
            .copied()
            .unwrap_or(Phase::Cancelled);
        Word {
            generation: raw >> 8,
            job,
            phase,
        }
    }

    fn with_phase(self, phase: Phase) -> u32 {
        Word { phase, ..self }.pack()
    }
}

/// The worker is busy (or still cleaning up an abandoned job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Names one submitted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    generation: u32,
    job: Job,
}

impl Ticket {
    /// The job this ticket is for.
    pub fn job(&self) -> Job {
        self.job
    }
}

/// What became of a submitted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Not finished.
    Pending,
    /// Finished with a result, which the caller now owns (read it before the next submit).
    Succeeded,
    /// Finished with an error status (read it before the next submit).
    Failed,
    /// The slot holds another generation: this ticket was already settled.
    Gone,
}

/// What [`SlotClient::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The worker had not started it: nothing ran.
    Withdrawn,
    /// The worker runs it and will drop its result (close the socket) when it finishes.
    WorkerCleansUp,
    /// It had already finished: the caller owns the result and must release it (close the
    /// socket) itself.
    Finished(JobStatus),
    /// Nothing to cancel for this ticket.
    Gone,
}

/// The main loop's side of the slot. Exactly one must exist per slot.
#[derive(Debug)]
pub struct SlotClient {
    next_generation: u32,
}

impl Default for SlotClient {
    fn default() -> Self {
        Self::new()
    }
}

impl SlotClient {
    /// The client of a slot that holds [`Word::INITIAL`].
    pub const fn new() -> Self {
        SlotClient { next_generation: 1 }
    }

    /// Whether a job would be accepted now.
    pub fn is_idle<C: SlotCell>(&self, cell: &C) -> bool {
        Word::unpack(cell.load()).phase == Phase::Idle
    }

    /// Posts `job` if the slot is idle. The caller then wakes the worker.
    pub fn submit<C: SlotCell>(&mut self, cell: &C, job: Job) -> Result<Ticket, Busy> {
        let raw = cell.load();
        let word = Word::unpack(raw);
        if word.phase != Phase::Idle {
            return Err(Busy);
        }
        let mut generation = self.next_generation & GENERATION_MASK;
        if generation == word.generation {
            // After a wrap: never reuse the generation the slot shows.
            generation = (generation + 1) & GENERATION_MASK;
        }
        self.next_generation = generation.wrapping_add(1);
        let ticket = Ticket { generation, job };
        let requested = Word {
            generation,
            job: Some(job),
            phase: Phase::Requested,
        };
        // Only the worker's cleanup can move an idle word, and it never does: the CAS only
        // guards against a caller breaking the one-client rule.
        cell.compare_exchange(raw, requested.pack())
            .map_err(|_| Busy)?;
        Ok(ticket)
    }

    /// Checks a job; a finished one is handed over once and the slot becomes idle.
    pub fn poll<C: SlotCell>(&mut self, cell: &C, ticket: Ticket) -> JobStatus {
        let word = Word::unpack(cell.load());
        if word.generation != ticket.generation {
            return JobStatus::Gone;
        }
        match word.phase {
            Phase::Requested | Phase::Running => JobStatus::Pending,
            Phase::Done => {
                cell.store(word.with_phase(Phase::Idle));
                JobStatus::Succeeded
            }
            Phase::Failed => {
                cell.store(word.with_phase(Phase::Idle));
                JobStatus::Failed
            }
            Phase::Idle | Phase::Cancelled => JobStatus::Gone,
        }
    }

    /// Abandons a job, whatever the worker is doing with it.
    pub fn cancel<C: SlotCell>(&mut self, cell: &C, ticket: Ticket) -> Cancelled {
        let mut raw = cell.load();
        // The worker moves a job forward at most twice (claim, finish), so the third look
        // always settles it.
        for _ in 0..3 {
            let word = Word::unpack(raw);
            if word.generation != ticket.generation {
                return Cancelled::Gone;
            }
            let (target, outcome) = match word.phase {
                Phase::Requested => (Phase::Idle, Cancelled::Withdrawn),
                Phase::Running => (Phase::Cancelled, Cancelled::WorkerCleansUp),
                Phase::Done | Phase::Failed => {
                    return Cancelled::Finished(self.poll(cell, ticket));
                }
                Phase::Idle | Phase::Cancelled => return Cancelled::Gone,
            };
            match cell.compare_exchange(raw, word.with_phase(target)) {
                Ok(()) => return outcome,
                Err(seen) => raw = seen,
            }
        }
        Cancelled::Gone
    }
}

/// A job the worker took (see [`claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    word: Word,
}

impl Claim {
    /// The job to run.
    pub fn job(&self) -> Job {
        // A claimed word always carries its job; `submit` writes it.
        self.word.job.unwrap_or(Job::Connect)
    }
}

/// What [`finish`] did with the worker's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Published: the main loop takes it over.
    Published,
    /// The main loop had cancelled: the worker must release the result itself (close the
    /// socket). The slot is idle again.
    Discard,
}

/// Worker: takes the requested job, if any (after being woken; a spurious wake finds none).
pub fn claim<C: SlotCell>(cell: &C) -> Option<Claim> {
    let raw = cell.load();
    let word = Word::unpack(raw);
    if word.phase != Phase::Requested || word.job.is_none() {
        return None;
    }
    // Fails only if the main loop withdrew it in the meantime.
    cell.compare_exchange(raw, word.with_phase(Phase::Running))
        .ok()
        .map(|()| Claim {
            word: Word {
                phase: Phase::Running,
                ..word
            },
        })
}

/// Worker: publishes the outcome of a claimed job (`succeeded`: a result was stored beside the
/// word; otherwise an error status was).
pub fn finish<C: SlotCell>(cell: &C, claim: Claim, succeeded: bool) -> Finish {
    let phase = if succeeded {
        Phase::Done
    } else {
        Phase::Failed
    };
    match cell.compare_exchange(claim.word.pack(), claim.word.with_phase(phase)) {
        Ok(()) => Finish::Published,
        Err(_) => {
            // Only `cancel` moves a running job, to Cancelled; from there only the worker
            // moves it, so a plain store is safe.
            cell.store(claim.word.with_phase(Phase::Idle));
            Finish::Discard
        }
    }
}

#[cfg(test)]
mod tests;
