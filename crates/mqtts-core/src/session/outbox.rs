//! Outgoing QoS 1 and 2 messages that are not yet acknowledged, kept across reconnects.
//!
//! Each message is stored as its encoded PUBLISH in one byte arena, in the order it was published,
//! so a resend after a reconnect replays them in their original order (MQTT 3.1.1 §4.6).

use crate::codec::PUBLISH_DUP_FLAG;

/// Where an outgoing QoS 1/2 message is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The PUBLISH must be (re)sent; `dup` once it may have reached the broker before.
    Queued {
        /// Set the DUP flag when sending.
        dup: bool,
    },
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    AwaitAck,
    /// PUBREC received; the PUBREL must be (re)sent.
    RelQueued,
    /// PUBREL sent; waiting for PUBCOMP (QoS 2).
    AwaitComp,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) packet_id: u16,
    pub(crate) qos2: bool,
    pub(crate) stage: Stage,
    pub(crate) sent_at: super::Millis,
    len: u16,
}

impl Slot {
    /// Length of the encoded PUBLISH in the arena.
    pub(crate) fn bytes(&self) -> usize {
        usize::from(self.len)
    }
}

/// Fixed-capacity store: `SLOTS` messages, `BYTES` bytes of encoded packets in total.
#[derive(Debug)]
pub(crate) struct Outbox<const SLOTS: usize, const BYTES: usize> {
    slots: heapless::Vec<Slot, SLOTS>,
    bytes: [u8; BYTES],
    used: usize,
}

impl<const SLOTS: usize, const BYTES: usize> Outbox<SLOTS, BYTES> {
    pub(crate) const fn new() -> Self {
        Outbox {
            slots: heapless::Vec::new(),
            bytes: [0; BYTES],
            used: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn contains(&self, packet_id: u16) -> bool {
        self.slots.iter().any(|s| s.packet_id == packet_id)
    }

    /// Space for `len` more encoded bytes.
    pub(crate) fn free_bytes(&self) -> usize {
        BYTES - self.used
    }

    /// The free tail of the arena, to encode the next PUBLISH into.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        self.bytes.get_mut(self.used..).unwrap_or(&mut [])
    }

    /// Records the `len` bytes just encoded into `spare()` as a new message.
    pub(crate) fn commit(&mut self, packet_id: u16, qos2: bool, len: usize) -> bool {
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        if len > self.free_bytes() {
            return false;
        }
        let slot = Slot {
            packet_id,
            qos2,
            stage: Stage::Queued { dup: false },
            sent_at: 0,
            len: len16,
        };
        if self.slots.push(slot).is_err() {
            return false;
        }
        self.used += len;
        true
    }

    pub(crate) fn iter_slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter()
    }

    pub(crate) fn slots_mut(&mut self) -> &mut [Slot] {
        &mut self.slots
    }

    pub(crate) fn slot_mut(&mut self, packet_id: u16) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.packet_id == packet_id)
    }

    /// The encoded PUBLISH of `slot`, which starts `offset` bytes into the arena (the sum of
    /// the lengths of the slots before it: the caller walks the slots in order), with the DUP
    /// flag set when `dup`.
    pub(crate) fn packet_at(&mut self, offset: usize, slot: &Slot, dup: bool) -> Option<&[u8]> {
        let bytes = self.bytes.get_mut(offset..offset + slot.bytes())?;
        if dup {
            if let Some(first) = bytes.first_mut() {
                *first |= PUBLISH_DUP_FLAG;
            }
        }
        Some(bytes)
    }

    /// Forgets the message with this id (its flow completed). Returns false if unknown.
    pub(crate) fn remove(&mut self, packet_id: u16) -> bool {
        let mut offset = 0usize;
        let mut found = None;
        for (i, s) in self.slots.iter().enumerate() {
            if s.packet_id == packet_id {
                found = Some((i, usize::from(s.len)));
                break;
            }
            offset += usize::from(s.len);
        }
        let Some((index, len)) = found else {
            return false;
        };
        // Rotating offset..used left by `len` closes the gap and parks the removed bytes in
        // the free tail (not memmove: see `ring::rotate_left`).
        if let Some(tail) = self.bytes.get_mut(offset..self.used) {
            crate::ring::rotate_left(tail, len);
        }
        self.used -= len;
        super::remove_in_order(&mut self.slots, index);
        true
    }
}
