//! `ring`: the receive ring buffer against a `VecDeque` model.
//!
//! Script: one byte picks the capacity, then operations (push, receive in place through
//! `write_space`/`commit`, consume, `contiguous`, clear). After every operation the stored bytes,
//! read through `readable`, must equal the model, and the sizes must agree.

use crate::input::{Input, Output};
use mqtts_core::ring::RingBuffer;
use std::collections::VecDeque;

/// One operation on the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `push(data)`.
    Push(Vec<u8>),
    /// Fill the first `write` bytes of `write_space()` with `fill`, then `commit(commit)`.
    Commit {
        /// Bytes written into the space.
        write: u8,
        /// Value written.
        fill: u8,
        /// Argument to `commit` (clamped by the ring).
        commit: u8,
    },
    /// `consume(n)`.
    Consume(u8),
    /// `contiguous(n)`.
    Contiguous(u8),
    /// `clear()`.
    Clear,
}

/// Capacities the first byte chooses from: degenerate, odd, and the firmware's order of size.
pub const CAPACITIES: [usize; 4] = [0, 1, 7, 64];

impl Op {
    /// Reads one operation.
    pub fn read(input: &mut Input<'_>) -> Op {
        match input.u8() % 5 {
            0 => Op::Push(input.short_bytes().to_vec()),
            1 => Op::Commit {
                write: input.u8(),
                fill: input.u8(),
                commit: input.u8(),
            },
            2 => Op::Consume(input.u8()),
            3 => Op::Contiguous(input.u8()),
            _ => Op::Clear,
        }
    }

    /// Writes the operation so that [`Op::read`] gives it back.
    pub fn write(&self, out: &mut Output) {
        match self {
            Op::Push(d) => {
                out.u8(0);
                out.short_bytes(d);
            }
            Op::Commit {
                write,
                fill,
                commit,
            } => {
                out.u8(1);
                out.u8(*write);
                out.u8(*fill);
                out.u8(*commit);
            }
            Op::Consume(n) => {
                out.u8(2);
                out.u8(*n);
            }
            Op::Contiguous(n) => {
                out.u8(3);
                out.u8(*n);
            }
            Op::Clear => out.u8(4),
        }
    }
}

/// Encodes a script: capacity index, then operations.
pub fn encode_script(capacity_index: u8, ops: &[Op]) -> Vec<u8> {
    let mut out = Output::default();
    out.u8(capacity_index);
    for op in ops {
        op.write(&mut out);
    }
    out.bytes
}

/// The target.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 4 {
        0 => exercise::<0>(input),
        1 => exercise::<1>(input),
        2 => exercise::<7>(input),
        _ => exercise::<64>(input),
    }
}

fn exercise<const N: usize>(mut input: Input<'_>) {
    let mut ring: RingBuffer<N> = RingBuffer::new();
    let mut model: VecDeque<u8> = VecDeque::new();
    while !input.is_empty() {
        match Op::read(&mut input) {
            Op::Push(data) => {
                let n = ring.push(&data);
                assert_eq!(n, data.len().min(N - model.len()), "push stores what fits");
                model.extend(&data[..n]);
            }
            Op::Commit {
                write,
                fill,
                commit,
            } => {
                let space = ring.write_space();
                assert!(space.len() <= N - model.len());
                assert!(
                    model.len() == N || !space.is_empty(),
                    "free space but no region"
                );
                let w = usize::from(write).min(space.len());
                space[..w].fill(fill);
                let n = usize::from(commit).min(space.len());
                let added = space[..n].to_vec();
                ring.commit(usize::from(commit));
                model.extend(added);
            }
            Op::Consume(n) => {
                ring.consume(usize::from(n));
                let n = usize::from(n).min(model.len());
                model.drain(..n);
            }
            Op::Contiguous(n) => {
                let n = usize::from(n);
                match ring.contiguous(n) {
                    Some(got) => {
                        assert!(n <= model.len());
                        assert_eq!(got.len(), n);
                        assert!(got.iter().eq(model.iter().take(n)), "contiguous bytes");
                    }
                    None => assert!(
                        n > model.len(),
                        "contiguous({n}) refused with {}",
                        model.len()
                    ),
                }
            }
            Op::Clear => {
                ring.clear();
                model.clear();
            }
        }
        assert_eq!(ring.len(), model.len());
        assert_eq!(ring.free(), N - model.len());
        assert_eq!(ring.is_empty(), model.is_empty());
        assert_eq!(ring.capacity(), N);
        let (a, b) = ring.readable();
        assert!(
            a.iter().chain(b).eq(model.iter()),
            "readable bytes differ from the model"
        );
        assert!(b.is_empty() || !a.is_empty());
    }
}
