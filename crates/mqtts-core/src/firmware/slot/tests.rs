//! Slot protocol tests: the word format, each transition, the races between the two sides
//! (injected between an operation's load and its CAS), and every interleaving of a short
//! client and worker script with socket accounting.

use super::*;
use std::boxed::Box;
use std::cell::{Cell, RefCell};
use std::vec::Vec;

type Hook = Box<dyn FnOnce(&TestCell)>;

/// A single-threaded slot whose next CAS can first run "the other thread".
#[derive(Default)]
struct TestCell {
    word: Cell<u32>,
    before_cas: RefCell<Option<Hook>>,
}

impl TestCell {
    fn phase(&self) -> Phase {
        Word::unpack(self.word.get()).phase
    }

    fn race_before_next_cas(&self, hook: impl FnOnce(&TestCell) + 'static) {
        *self.before_cas.borrow_mut() = Some(Box::new(hook));
    }
}

impl SlotCell for TestCell {
    fn load(&self) -> u32 {
        self.word.get()
    }
    fn compare_exchange(&self, current: u32, new: u32) -> Result<(), u32> {
        let hook = self.before_cas.borrow_mut().take();
        if let Some(hook) = hook {
            hook(self);
        }
        let seen = self.word.get();
        if seen == current {
            self.word.set(new);
            Ok(())
        } else {
            Err(seen)
        }
    }
    fn store(&self, new: u32) {
        self.word.set(new);
    }
}

#[test]
fn word_layout() {
    // generation << 8 | job << 4 | phase, phases numbered in the order of the diagram.
    let w = Word {
        generation: 1,
        job: Some(Job::Connect),
        phase: Phase::Requested,
    };
    assert_eq!(w.pack(), 0x0000_0111);
    let w = Word {
        generation: 0x00ab_cdef,
        job: Some(Job::TimeSync),
        phase: Phase::Cancelled,
    };
    assert_eq!(w.pack(), 0xabcd_ef25);
    assert_eq!(Word::unpack(0xabcd_ef25), w);
    assert_eq!(
        Word::unpack(Word::INITIAL),
        Word {
            generation: 0,
            job: None,
            phase: Phase::Idle
        }
    );
    // Generations wrap at 24 bits.
    let w = Word {
        generation: 0x0100_0002,
        job: Some(Job::Connect),
        phase: Phase::Done,
    };
    assert_eq!(Word::unpack(w.pack()).generation, 2);
    // A phase value this module never writes is treated as "worker owns it".
    assert_eq!(Word::unpack(0x0000_011f).phase, Phase::Cancelled);
    for phase in PHASES {
        for job in [Job::Connect, Job::TimeSync] {
            let w = Word {
                generation: 77,
                job: Some(job),
                phase,
            };
            assert_eq!(Word::unpack(w.pack()), w);
        }
    }
}

#[test]
fn connect_job_round_trip() {
    let cell = TestCell::default();
    let mut client = SlotClient::new();
    assert!(client.is_idle(&cell));
    let ticket = client.submit(&cell, Job::Connect).unwrap();
    assert_eq!(ticket.job(), Job::Connect);
    assert_eq!(cell.phase(), Phase::Requested);
    assert_eq!(client.poll(&cell, ticket), JobStatus::Pending);
    assert_eq!(client.submit(&cell, Job::TimeSync), Err(Busy));

    let claim = claim(&cell).unwrap();
    assert_eq!(claim.job(), Job::Connect);
    assert_eq!(cell.phase(), Phase::Running);
    assert_eq!(super::claim(&cell), None, "a job is claimed once");
    assert_eq!(client.poll(&cell, ticket), JobStatus::Pending);
    assert_eq!(client.submit(&cell, Job::TimeSync), Err(Busy));

    assert_eq!(finish(&cell, claim, true), Finish::Published);
    assert_eq!(cell.phase(), Phase::Done);
    assert_eq!(client.poll(&cell, ticket), JobStatus::Succeeded);
    assert!(client.is_idle(&cell));
    // Handed over once.
    assert_eq!(client.poll(&cell, ticket), JobStatus::Gone);
    assert_eq!(client.cancel(&cell, ticket), Cancelled::Gone);

    // The next job gets a new generation; an old ticket does not see its result.
    let next = client.submit(&cell, Job::TimeSync).unwrap();
    let c = super::claim(&cell).unwrap();
    assert_eq!(c.job(), Job::TimeSync);
    assert_eq!(finish(&cell, c, false), Finish::Published);
    assert_eq!(client.poll(&cell, ticket), JobStatus::Gone);
    assert_eq!(client.poll(&cell, next), JobStatus::Failed);
    assert!(client.is_idle(&cell));
}

#[test]
fn spurious_wake_claims_nothing() {
    let cell = TestCell::default();
    assert_eq!(claim(&cell), None);
    assert_eq!(cell.word.get(), Word::INITIAL);
}

#[test]
fn cancel_before_the_worker_starts_withdraws() {
    let cell = TestCell::default();
    let mut client = SlotClient::new();
    let t = client.submit(&cell, Job::Connect).unwrap();
    assert_eq!(client.cancel(&cell, t), Cancelled::Withdrawn);
    assert!(client.is_idle(&cell));
    assert_eq!(claim(&cell), None, "the worker wakes and finds nothing");
}

#[test]
fn cancel_while_running_lets_the_worker_clean_up() {
    let cell = TestCell::default();
    let mut client = SlotClient::new();
    let t = client.submit(&cell, Job::Connect).unwrap();
    let c = claim(&cell).unwrap();
    assert_eq!(client.cancel(&cell, t), Cancelled::WorkerCleansUp);
    assert_eq!(cell.phase(), Phase::Cancelled);
    assert_eq!(client.submit(&cell, Job::Connect), Err(Busy));
    assert_eq!(client.poll(&cell, t), JobStatus::Gone);
    assert_eq!(finish(&cell, c, true), Finish::Discard);
    assert!(client.is_idle(&cell));
    assert!(client.submit(&cell, Job::Connect).is_ok());
}

#[test]
fn race_worker_claims_between_cancel_load_and_cas() {
    let cell = TestCell::default();
    let mut client = SlotClient::new();
    let t = client.submit(&cell, Job::Connect).unwrap();
    let claimed = std::rc::Rc::new(Cell::new(None));
    let out = claimed.clone();
    cell.race_before_next_cas(move |cell| out.set(claim(cell)));
    // cancel saw Requested; its CAS to Idle fails, it re-reads Running and cancels that.
    assert_eq!(client.cancel(&cell, t), Cancelled::WorkerCleansUp);
    let c = claimed.get().expect("worker claimed in the race");
    assert_eq!(finish(&cell, c, true), Finish::Discard);
    assert!(client.is_idle(&cell));
}

#[test]
fn race_worker_finishes_between_cancel_load_and_cas() {
    let cell = TestCell::default();
    let mut client = SlotClient::new();
    let t = client.submit(&cell, Job::Connect).unwrap();
    let c = claim(&cell).unwrap();
    let published = std::rc::Rc::new(Cell::new(None));
    let out = published.clone();
    cell.race_before_next_cas(move |cell| out.set(Some(finish(cell, c, true))));
    // cancel saw Running; the worker published first: the caller owns the socket now.
    assert_eq!(
        client.cancel(&cell, t),
        Cancelled::Finished(JobStatus::Succeeded)
    );
    assert_eq!(published.get(), Some(Finish::Published));
    assert!(client.is_idle(&cell));
}

#[test]
fn race_client_withdraws_between_claim_load_and_cas() {
    let cell = TestCell::default();
    let mut client = SlotClient::new();
    let t = client.submit(&cell, Job::TimeSync).unwrap();
    let result = std::rc::Rc::new(Cell::new(None));
    let out = result.clone();
    cell.race_before_next_cas(move |cell| {
        let mut client = SlotClient::new();
        out.set(Some(client.cancel(cell, t)));
    });
    assert_eq!(claim(&cell), None);
    assert_eq!(result.get(), Some(Cancelled::Withdrawn));
    assert!(SlotClient::new().is_idle(&cell));
}

#[test]
fn race_client_cancels_between_finish_load_and_cas() {
    let cell = TestCell::default();
    let mut client = SlotClient::new();
    let t = client.submit(&cell, Job::Connect).unwrap();
    let c = claim(&cell).unwrap();
    let result = std::rc::Rc::new(Cell::new(None));
    let out = result.clone();
    cell.race_before_next_cas(move |cell| {
        let mut client = SlotClient::new();
        out.set(Some(client.cancel(cell, t)));
    });
    assert_eq!(finish(&cell, c, true), Finish::Discard);
    assert_eq!(result.get(), Some(Cancelled::WorkerCleansUp));
    assert!(client.is_idle(&cell));
}

#[test]
fn generations_never_repeat_the_idle_word() {
    let cell = TestCell::default();
    let mut client = SlotClient {
        next_generation: GENERATION_MASK,
    };
    let t = client.submit(&cell, Job::Connect).unwrap();
    assert_eq!(Word::unpack(cell.word.get()).generation, GENERATION_MASK);
    let c = claim(&cell).unwrap();
    finish(&cell, c, false);
    assert_eq!(client.poll(&cell, t), JobStatus::Failed);
    // Wraps to 0, then 1, ... but never to the generation the idle slot shows.
    let t2 = client.submit(&cell, Job::Connect).unwrap();
    assert_ne!(t2, t);
    assert_eq!(Word::unpack(cell.word.get()).generation, 0);
    assert_eq!(client.cancel(&cell, t2), Cancelled::Withdrawn);
    let mut stuck = SlotClient { next_generation: 0 };
    let t3 = stuck.submit(&cell, Job::Connect).unwrap();
    assert_ne!(t3.generation, 0);
}

#[derive(Debug, Clone, Copy)]
enum ClientOp {
    Poll,
    Cancel,
}

/// Every interleaving of `submit; ops...` (main loop) with `claim; finish` (worker): each socket
/// the worker creates is released exactly once, by the side the protocol says, the main loop
/// never receives a job it abandoned, and the slot always ends idle.
#[test]
fn every_interleaving_accounts_for_every_socket() {
    let op_sets: Vec<[ClientOp; 3]> = {
        let both = [ClientOp::Poll, ClientOp::Cancel];
        let mut v = Vec::new();
        for a in both {
            for b in both {
                for c in both {
                    v.push([a, b, c]);
                }
            }
        }
        v
    };
    let mut runs = 0;
    for ops in &op_sets {
        for succeeds in [true, false] {
            // Positions of the worker's two steps among the 6 steps.
            for first in 0..6 {
                for second in first + 1..6 {
                    run(ops, succeeds, first, second);
                    runs += 1;
                }
            }
        }
    }
    assert_eq!(runs, 8 * 2 * 15);
}

fn run(ops: &[ClientOp; 3], succeeds: bool, first: usize, second: usize) {
    let cell = TestCell::default();
    let mut client = SlotClient::new();
    let mut ticket = None;
    let mut abandoned = false;
    let mut claim_held = None;
    let (mut opened, mut client_closed, mut worker_closed) = (0, 0, 0);
    let mut client_ops = ops.iter();
    let mut submitted = false;

    for step in 0..6 {
        if step == first {
            claim_held = claim(&cell);
        } else if step == second {
            if let Some(c) = claim_held.take() {
                if succeeds {
                    opened += 1;
                }
                if finish(&cell, c, succeeds) == Finish::Discard && succeeds {
                    worker_closed += 1;
                }
            }
        } else if !submitted {
            ticket = Some(client.submit(&cell, Job::Connect).unwrap());
            submitted = true;
        } else {
            let t = ticket.unwrap();
            match client_ops.next().unwrap() {
                ClientOp::Poll => match client.poll(&cell, t) {
                    JobStatus::Succeeded => {
                        assert!(!abandoned, "got a result after cancelling");
                        client_closed += 1;
                    }
                    JobStatus::Failed => assert!(!abandoned),
                    JobStatus::Pending | JobStatus::Gone => {}
                },
                ClientOp::Cancel => {
                    match client.cancel(&cell, t) {
                        Cancelled::Finished(JobStatus::Succeeded) => client_closed += 1,
                        Cancelled::Finished(_) | Cancelled::Gone => {}
                        Cancelled::Withdrawn | Cancelled::WorkerCleansUp => {}
                    }
                    abandoned = true;
                }
            }
        }
    }
    // Settle: the main loop gives up on whatever is left; the worker wakes once more.
    let t = ticket.unwrap();
    if let Some(c) = claim(&cell) {
        // Claimed only if nobody withdrew it and the worker had claimed too early before.
        if succeeds {
            opened += 1;
        }
        claim_held = Some(c);
    }
    if let Cancelled::Finished(JobStatus::Succeeded) = client.cancel(&cell, t) {
        client_closed += 1;
    }
    if let Some(c) = claim_held.take() {
        if finish(&cell, c, succeeds) == Finish::Discard && succeeds {
            worker_closed += 1;
        }
    }
    if let Cancelled::Finished(JobStatus::Succeeded) = client.cancel(&cell, t) {
        client_closed += 1;
    }
    assert_eq!(
        opened,
        client_closed + worker_closed,
        "ops {ops:?} succeeds {succeeds} worker at {first},{second}"
    );
    assert!(opened <= 1);
    assert_eq!(cell.phase(), Phase::Idle, "ops {ops:?} at {first},{second}");
}
