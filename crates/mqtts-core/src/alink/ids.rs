//! Message ids and the table of property posts awaiting their reply.
//!
//! Ids are decimal strings of a per-connection counter: 1, 2, 3, … (after `u32::MAX` the counter
//! wraps to 1, never 0, so `"0"` stays free for [`super::NO_ID`]). Call [`MessageIds::reset`] and
//! [`PendingPosts::clear`] on every new connection.

/// A message id: never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId(u32);

/// Longest decimal rendering of a [`MessageId`].
pub const ID_STR_LEN: usize = 10;

impl MessageId {
    /// The id for `value`, or `None` for 0.
    pub fn new(value: u32) -> Option<MessageId> {
        if value == 0 {
            None
        } else {
            Some(MessageId(value))
        }
    }

    /// The numeric value.
    pub fn value(self) -> u32 {
        self.0
    }

    /// The id as sent: decimal digits.
    pub fn to_str(self) -> heapless::String<ID_STR_LEN> {
        let mut s = heapless::String::new();
        // u32::MAX has 10 digits, so this always fits.
        let _ = crate::json::push_decimal(&mut s, u64::from(self.0));
        s
    }

    /// Parses an id as received (decimal digits, no sign, no leading zeros).
    pub fn parse(s: &str) -> Option<MessageId> {
        crate::json::parse_u64(s.as_bytes())
            .and_then(|n| u32::try_from(n).ok())
            .and_then(MessageId::new)
    }
}

/// Per-connection message id counter.
#[derive(Debug, Clone, Default)]
pub struct MessageIds {
    last: u32,
}

impl MessageIds {
    /// A counter whose first id is 1.
    pub const fn new() -> MessageIds {
        MessageIds { last: 0 }
    }

    /// Starts over at 1 (call on each new connection).
    pub fn reset(&mut self) {
        self.last = 0;
    }

    /// The next id.
    pub fn next_id(&mut self) -> MessageId {
        self.last = self.last.checked_add(1).unwrap_or(1);
        MessageId(self.last)
    }
}

/// Ids of up to `K` property posts awaiting `post_reply`. When full, the oldest entry is
/// evicted, so a lost reply never blocks new posts.
#[derive(Debug, Clone)]
pub struct PendingPosts<const K: usize> {
    /// Pending ids with their insertion sequence number (smallest = oldest).
    slots: [Option<(MessageId, u64)>; K],
    seq: u64,
}

impl<const K: usize> Default for PendingPosts<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const K: usize> PendingPosts<K> {
    /// An empty table.
    pub const fn new() -> Self {
        PendingPosts {
            slots: [None; K],
            seq: 0,
        }
    }

    /// Records `id` as awaiting a reply; returns the evicted oldest id if the table was full.
    pub fn insert(&mut self, id: MessageId) -> Option<MessageId> {
        let seq = self.seq;
        self.seq = self.seq.saturating_add(1);
        if let Some(free) = self.slots.iter_mut().find(|s| s.is_none()) {
            *free = Some((id, seq));
            return None;
        }
        let oldest = self
            .slots
            .iter_mut()
            .min_by_key(|s| s.map_or(0, |(_, seq)| seq))?;
        oldest.replace((id, seq)).map(|(old, _)| old)
    }

    /// Removes `id`; `true` if it was pending.
    pub fn resolve(&mut self, id: MessageId) -> bool {
        match self
            .slots
            .iter_mut()
            .find(|s| matches!(s, Some((pending, _)) if *pending == id))
        {
            Some(slot) => {
                *slot = None;
                true
            }
            None => false,
        }
    }

    /// Number of pending ids.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (on a new connection replies to old posts never come).
    pub fn clear(&mut self) {
        self.slots = [None; K];
        self.seq = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_from_one_and_reset() {
        let mut ids = MessageIds::new();
        assert_eq!(ids.next_id().to_str().as_str(), "1");
        assert_eq!(ids.next_id().to_str().as_str(), "2");
        ids.reset();
        assert_eq!(ids.next_id().to_str().as_str(), "1");
    }

    #[test]
    fn ids_wrap_skipping_zero() {
        let mut ids = MessageIds { last: u32::MAX - 1 };
        assert_eq!(ids.next_id().to_str().as_str(), "4294967295");
        assert_eq!(ids.next_id().value(), 1);
    }

    #[test]
    fn parse_ids() {
        assert_eq!(MessageId::parse("42"), MessageId::new(42));
        assert_eq!(MessageId::parse("0"), None);
        assert_eq!(MessageId::parse("042"), None);
        assert_eq!(MessageId::parse("4294967296"), None);
        assert_eq!(MessageId::parse("x"), None);
    }

    #[test]
    fn pending_table_evicts_oldest() {
        let id = |n| MessageId::new(n).unwrap();
        let mut p = PendingPosts::<2>::new();
        assert_eq!(p.insert(id(1)), None);
        assert_eq!(p.insert(id(2)), None);
        assert_eq!(p.insert(id(3)), Some(id(1)));
        assert!(!p.resolve(id(1)));
        assert!(p.resolve(id(2)));
        assert_eq!(p.insert(id(4)), None);
        assert_eq!(p.insert(id(5)), Some(id(3)));
        assert_eq!(p.len(), 2);
        p.clear();
        assert!(p.is_empty());
    }
}
