//! Topic name and filter validation and matching (MQTT 3.1.1 §4.7).

/// Longest string MQTT can carry (two-byte length prefix).
const MAX_STR: usize = 65_535;

/// Whether `topic` is a valid topic name: 1..=65535 bytes, no `+`, `#` or U+0000.
pub fn valid_topic_name(topic: &str) -> bool {
    let b = topic.as_bytes();
    !b.is_empty() && b.len() <= MAX_STR && !b.iter().any(|&c| matches!(c, 0 | b'+' | b'#'))
}

/// Whether `filter` is a valid topic filter: 1..=65535 bytes, no U+0000, `+` only as a whole
/// level, `#` only as the whole last level.
pub fn valid_topic_filter(filter: &str) -> bool {
    let b = filter.as_bytes();
    if b.is_empty() || b.len() > MAX_STR {
        return false;
    }
    let mut prev = b'/';
    for (i, &c) in b.iter().enumerate() {
        let next = b.get(i.wrapping_add(1)).copied();
        let ok = match c {
            0 => false,
            b'+' => prev == b'/' && matches!(next, None | Some(b'/')),
            b'#' => prev == b'/' && next.is_none(),
            _ => true,
        };
        if !ok {
            return false;
        }
        prev = c;
    }
    true
}

/// Whether the (valid) `filter` matches the (valid) topic name `topic`, per MQTT 3.1.1 §4.7:
/// `+` matches one whole level, a trailing `#` matches the parent level and any number of child
/// levels, and topics starting with `$` are not matched by filters starting with a wildcard.
/// Invalid input yields some answer, never a panic.
pub fn matches(filter: &str, topic: &str) -> bool {
    let (f, t) = (filter.as_bytes(), topic.as_bytes());
    if t.first() == Some(&b'$') && matches!(f.first(), Some(b'+' | b'#')) {
        return false;
    }
    let mut fl = f.split(|&c| c == b'/');
    let mut tl = t.split(|&c| c == b'/');
    loop {
        match (fl.next(), tl.next()) {
            (Some(b"#"), _) => return true,
            (Some(a), Some(b)) => {
                if a != b"+" && !same(a, b) {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// `a == b`, as a byte loop: slice equality calls `memcmp`, about 130 bytes of flash on
/// Cortex-M for levels that are a few bytes long.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
