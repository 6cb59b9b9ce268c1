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
    // Each byte is checked against the one before it (no look-ahead, so no indexing): a
    // wildcard must follow a `/` (or start the filter), only a `/` may follow `+`, nothing may
    // follow `#`.
    let mut prev = b'/';
    for &c in b {
        let wildcard = matches!(c, b'+' | b'#');
        if c == 0 || (wildcard && prev != b'/') || prev == b'#' || (prev == b'+' && c != b'/') {
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
    // Byte by byte rather than level by level: the `split` iterators and level comparison cost
    // about twice the flash on Cortex-M. For a valid filter, `+` and `#` are only met at the
    // start of a level.
    let (mut f, mut t) = (f, t);
    loop {
        match (f, t) {
            ([b'#', ..], _) => return true,
            ([b'+', f_rest @ ..], _) => {
                // `+` takes the topic's whole level, which may be empty.
                while let [c, t_rest @ ..] = t {
                    if *c == b'/' {
                        break;
                    }
                    t = t_rest;
                }
                f = f_rest;
            }
            ([a, f_rest @ ..], [b, t_rest @ ..]) if a == b => {
                f = f_rest;
                t = t_rest;
            }
            // `a/#` also matches the parent level `a`.
            ([b'/', b'#'], []) | ([], []) => return true,
            _ => return false,
        }
    }
}
