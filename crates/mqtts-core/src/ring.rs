//! Receive ring buffer.
//!
//! The socket is read straight into the free space ([`RingBuffer::write_space`] then
//! [`RingBuffer::commit`]), and the decoder asks for a whole packet as one slice
//! ([`RingBuffer::contiguous`]). When a packet wraps around the end of the storage, the storage is
//! rotated in place once, so the decoder never needs a second buffer and the common case (no wrap)
//! copies nothing.
//!
//! All sizes are clamped instead of asserted: no method panics, whatever the caller passes.

/// A byte ring buffer of `N` bytes stored inline (no heap).
///
/// The stored bytes start at `head` and run for `len` bytes, wrapping at `N`.
#[derive(Debug, Clone)]
pub struct RingBuffer<const N: usize> {
    buf: [u8; N],
    /// Index of the first stored byte; always `< N` when `N > 0`, and `0` when empty.
    head: usize,
    /// Number of stored bytes; always `<= N`.
    len: usize,
}

impl<const N: usize> Default for RingBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RingBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            head: 0,
            len: 0,
        }
    }

    /// Total storage in bytes (`N`).
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of stored bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are stored.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of bytes that can still be stored (possibly split in two regions).
    pub const fn free(&self) -> usize {
        N - self.len
    }

    /// Index one past the last stored byte, wrapped into `0..N` (or `0` when `N == 0`).
    fn tail(&self) -> usize {
        // head < N and len <= N, so the sum cannot overflow and one subtraction wraps it.
        let end = self.head + self.len;
        if end >= N {
            end - N
        } else {
            end
        }
    }

    /// Bounds `start..end` of the largest contiguous free region at the write position.
    fn write_region(&self) -> (usize, usize) {
        if self.len >= N {
            return (0, 0);
        }
        let tail = self.tail();
        if tail >= self.head {
            // Data (if any) sits in head..tail: free space runs to the end of the storage.
            // (When empty, head == tail == 0, so this is the whole storage.)
            (tail, N)
        } else {
            // Data wraps: the free space is the gap between the tail and the head.
            (tail, self.head)
        }
    }

    /// The largest contiguous free region at the write position, to receive into directly.
    ///
    /// May be shorter than [`free`](Self::free) when the free space wraps around the end; call
    /// again after [`commit`](Self::commit) to get the rest. Empty when the buffer is full.
    pub fn write_space(&mut self) -> &mut [u8] {
        let (start, end) = self.write_region();
        self.buf.get_mut(start..end).unwrap_or_default()
    }

    /// Marks the first `n` bytes of [`write_space`](Self::write_space) as holding data.
    ///
    /// `n` is clamped to the length of that region.
    pub fn commit(&mut self, n: usize) {
        let (start, end) = self.write_region();
        self.len += n.min(end - start);
    }

    /// The stored bytes, in order, as two slices (the second is empty unless the data wraps).
    pub fn readable(&self) -> (&[u8], &[u8]) {
        let end = self.head + self.len;
        if end <= N {
            (self.buf.get(self.head..end).unwrap_or_default(), &[])
        } else {
            let (front, back) = self.buf.split_at(self.head);
            (back, front.get(..end - N).unwrap_or_default())
        }
    }

    /// The first `n` stored bytes as one slice, or `None` if fewer than `n` are stored.
    ///
    /// If those bytes wrap around the end of the storage, the storage is rotated in place so
    /// that the stored data starts at index 0; nothing is lost and no scratch buffer is used.
    /// When they do not wrap, nothing is moved.
    pub fn contiguous(&mut self, n: usize) -> Option<&[u8]> {
        if n > self.len {
            return None;
        }
        if self.head + n > N {
            // Rotating the whole storage keeps the cyclic order, so head..head+len (mod N)
            // becomes 0..len.
            rotate_left(&mut self.buf, self.head);
            self.head = 0;
        }
        self.buf.get(self.head..self.head + n)
    }

    /// Drops the first `n` stored bytes (clamped to [`len`](Self::len)).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        if self.len == 0 {
            // Restart at 0 so the next receive gets the whole storage as one region.
            self.head = 0;
        } else {
            let head = self.head + n;
            self.head = if head >= N { head - N } else { head };
        }
    }

    /// Drops all stored bytes.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Copies in as much of `data` as fits; returns how many bytes were stored.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let mut done = 0;
        // At most two rounds: the region up to the end of the storage, then the wrapped part.
        while done < data.len() {
            let rest = data.get(done..).unwrap_or_default();
            let space = self.write_space();
            let n = space.len().min(rest.len());
            if n == 0 {
                break;
            }
            if let (Some(dst), Some(src)) = (space.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.commit(n);
            done += n;
        }
        done
    }
}

/// Rotates `buf` left by `mid` (clamped to its length) in place, with three reversals.
///
/// Does what `<[u8]>::rotate_left` does, in a few dozen bytes of code: the core's version, and
/// the `memmove` it calls, cost about 1.7 KB of flash on Cortex-M. The buffers rotated here are
/// small and rotations rare (a packet wrapped in the ring, the send queue or the store
/// compacted), so the extra pass does not matter.
pub(crate) fn rotate_left(buf: &mut [u8], mid: usize) {
    let (front, back) = buf.split_at_mut(mid.min(buf.len()));
    reverse(front);
    reverse(back);
    reverse(buf);
}

/// Reverses `buf` in place by swapping its ends inward.
///
/// Not `<[u8]>::reverse`: the core's version keeps an unreachable bounds-check panic and is
/// larger; the slice pattern needs no index at all.
fn reverse(mut buf: &mut [u8]) {
    while let [first, rest @ .., last] = buf {
        core::mem::swap(first, last);
        buf = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::RingBuffer;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    fn stored<const N: usize>(r: &RingBuffer<N>) -> Vec<u8> {
        let (a, b) = r.readable();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn empty_buffer() {
        let mut r = RingBuffer::<8>::new();
        assert_eq!(r.capacity(), 8);
        assert_eq!(r.len(), 0);
        assert!(r.is_empty());
        assert_eq!(r.free(), 8);
        assert_eq!(r.write_space().len(), 8);
        assert_eq!(r.readable(), (&[][..], &[][..]));
        assert_eq!(r.contiguous(0), Some(&[][..]));
        assert_eq!(r.contiguous(1), None);
    }

    #[test]
    fn write_space_and_commit() {
        let mut r = RingBuffer::<8>::new();
        r.write_space()[..3].copy_from_slice(&[1, 2, 3]);
        r.commit(3);
        assert_eq!(r.len(), 3);
        assert_eq!(r.free(), 5);
        assert_eq!(r.write_space().len(), 5);
        assert_eq!(r.readable(), (&[1, 2, 3][..], &[][..]));
        // Over-commit is clamped to the region.
        r.commit(100);
        assert_eq!(r.len(), 8);
        assert_eq!(r.free(), 0);
        assert!(r.write_space().is_empty());
        r.commit(1);
        assert_eq!(r.len(), 8);
    }

    #[test]
    fn free_space_wraps_so_write_space_is_shorter() {
        let mut r = RingBuffer::<8>::new();
        assert_eq!(r.push(&[0, 1, 2, 3, 4, 5]), 6);
        r.consume(4); // data [4, 5] at indices 4..6
        assert_eq!(r.free(), 6);
        assert_eq!(r.write_space().len(), 2); // indices 6..8
        r.write_space().copy_from_slice(&[6, 7]);
        r.commit(2);
        assert_eq!(r.write_space().len(), 4); // wrapped: indices 0..4
        r.write_space()[..1].copy_from_slice(&[8]);
        r.commit(1);
        assert_eq!(r.readable(), (&[4, 5, 6, 7][..], &[8][..]));
        assert_eq!(r.write_space().len(), 3); // indices 1..4, up to the head
    }

    #[test]
    fn packet_spanning_the_end_is_rotated_into_one_slice() {
        let mut r = RingBuffer::<10>::new();
        // A PUBLISH (QoS 0, topic "a/b", payload "hi").
        let publish = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
        // Put the head at index 7 with data still stored so it is not reset.
        assert_eq!(r.push(&[0xEE; 8]), 8);
        r.consume(7); // one 0xEE left at index 7
        assert_eq!(r.push(&publish), 9);
        assert_eq!(r.push(&[0xD0, 0x00]), 0); // full
        let (a, b) = r.readable();
        assert_eq!(a, &[0xEE, 0x30, 0x07]); // indices 7..10
        assert_eq!(b.len(), 7);
        r.consume(1);
        // The PUBLISH now spans indices 8,9 and 0..7.
        let (a, b) = r.readable();
        assert_eq!(a, &[0x30, 0x07]);
        assert_eq!(b, &publish[2..]);
        assert_eq!(r.contiguous(2), Some(&publish[..2])); // no wrap: no rotation
        assert_eq!(r.readable().0, &[0x30, 0x07]);
        assert_eq!(r.contiguous(9), Some(&publish[..]));
        assert_eq!(r.readable(), (&publish[..], &[][..]));
        assert_eq!(r.push(&[0xD0, 0x00]), 1); // only one byte of free space
        r.consume(9);
        assert_eq!(r.readable(), (&[0xD0][..], &[][..]));
    }

    #[test]
    fn rotation_keeps_data_beyond_the_requested_prefix() {
        let mut r = RingBuffer::<6>::new();
        r.push(&[9, 9, 9, 9]);
        r.consume(3); // one 9 at index 3
        assert_eq!(r.push(&[1, 2, 3, 4, 5]), 5); // indices 4, 5, 0, 1, 2
        r.consume(1);
        assert_eq!(r.contiguous(3), Some(&[1, 2, 3][..]));
        assert_eq!(stored(&r), [1, 2, 3, 4, 5]);
        r.consume(2);
        assert_eq!(r.contiguous(3), Some(&[3, 4, 5][..]));
        assert_eq!(r.contiguous(4), None);
    }

    #[test]
    fn push_splits_across_the_end_and_stops_when_full() {
        let mut r = RingBuffer::<5>::new();
        assert_eq!(r.push(&[1, 2, 3]), 3);
        r.consume(2);
        assert_eq!(r.push(&[4, 5, 6, 7, 8, 9]), 4);
        assert_eq!(r.readable(), (&[3, 4, 5][..], &[6, 7][..]));
        assert_eq!(r.push(&[10]), 0);
    }

    #[test]
    fn consume_and_clear_are_clamped() {
        let mut r = RingBuffer::<4>::new();
        r.push(&[1, 2, 3]);
        r.consume(10);
        assert!(r.is_empty());
        assert_eq!(r.write_space().len(), 4);
        r.push(&[1, 2, 3]);
        r.consume(1);
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.free(), 4);
        assert_eq!(r.write_space().len(), 4);
    }

    #[test]
    fn zero_capacity_never_panics() {
        let mut r = RingBuffer::<0>::new();
        assert!(r.write_space().is_empty());
        r.commit(5);
        assert_eq!(r.push(&[1]), 0);
        r.consume(3);
        assert_eq!(r.contiguous(0), Some(&[][..]));
        assert_eq!(r.contiguous(1), None);
        assert_eq!(r.readable(), (&[][..], &[][..]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(Vec<u8>),
        /// Receive `data` into `write_space`, committing `commit` bytes (may exceed the region).
        Recv {
            data: Vec<u8>,
            commit: usize,
        },
        Consume(usize),
        Contiguous(usize),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(Op::Push),
            4 => (proptest::collection::vec(any::<u8>(), 0..24), 0usize..30)
                .prop_map(|(data, commit)| Op::Recv { data, commit }),
            4 => (0usize..24).prop_map(Op::Consume),
            3 => (0usize..24).prop_map(Op::Contiguous),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_vecdeque_model(ops in proptest::collection::vec(op(), 0..64)) {
            const N: usize = 17;
            let mut r = RingBuffer::<N>::new();
            let mut model: VecDeque<u8> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(data) => {
                        let n = r.push(&data);
                        let expected = data.len().min(N - model.len());
                        prop_assert_eq!(n, expected);
                        model.extend(&data[..n]);
                    }
                    Op::Recv { data, commit } => {
                        let space = r.write_space();
                        let region = space.len();
                        prop_assert!(region <= N - model.len());
                        prop_assert!(model.len() == N || region > 0);
                        let k = region.min(data.len());
                        space[..k].copy_from_slice(&data[..k]);
                        // Committing beyond what was written stores whatever the region held
                        // before; mirror that by reading it back.
                        let n = commit.min(region);
                        let fresh: Vec<u8> = r.write_space()[..n].to_vec();
                        r.commit(commit);
                        model.extend(fresh);
                    }
                    Op::Consume(n) => {
                        r.consume(n);
                        let n = n.min(model.len());
                        model.drain(..n);
                    }
                    Op::Contiguous(n) => {
                        let got = r.contiguous(n).map(<[u8]>::to_vec);
                        if n <= model.len() {
                            let want: Vec<u8> = model.iter().take(n).copied().collect();
                            prop_assert_eq!(got, Some(want));
                        } else {
                            prop_assert_eq!(got, None);
                        }
                    }
                    Op::Clear => {
                        r.clear();
                        model.clear();
                    }
                }
                prop_assert_eq!(r.len(), model.len());
                prop_assert_eq!(r.free(), N - model.len());
                let want: Vec<u8> = model.iter().copied().collect();
                prop_assert_eq!(stored(&r), want);
            }
        }

        /// The three-reversal rotation (with its hand-written `reverse`) does what the core's
        /// `rotate_left` does, for every length and every `mid`, also past the end (clamped).
        #[test]
        fn rotate_left_matches_the_core(
            buf in proptest::collection::vec(any::<u8>(), 0..40),
            mid in 0usize..50,
        ) {
            let mut got = buf.clone();
            super::rotate_left(&mut got, mid);
            let clamped = mid.min(buf.len());
            let mut want = buf;
            want.rotate_left(clamped);
            prop_assert_eq!(got, want);
        }
    }
}
