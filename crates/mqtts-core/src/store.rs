//! The record format of stored options and its validation.
//!
//! A store is a sequence of records (a file on the host; on the device each record is meant to
//! be the value of one settings entry). A record:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `MQ` (0x4D 0x51) |
//! | 2 | 1 | format version, [`VERSION`] |
//! | 3 | 1 | flags: bit 0 = erased (the option returns to its default); other bits 0 |
//! | 4 | 1 | key length K, 1..=[`MAX_KEY_LEN`] |
//! | 5 | 2 | value length V, little endian, 0..=[`MAX_VALUE_LEN`] (0 when erased) |
//! | 7 | K | key, ASCII (an option name, `power_on.<switch>` or `last.<switch>`) |
//! | 7+K | V | value, UTF-8 text |
//! | 7+K+V | 4 | CRC-32 (IEEE 802.3, as zlib's `crc32`) of bytes 0..7+K+V, little endian |
//!
//! Later records win over earlier ones with the same key. [`load`] reads a whole store: a
//! damaged record (bad magic, length, CRC, text), one of another version or with an unknown
//! key is reported and skipped (the decoder resynchronises on the next magic), a value that
//! breaks its option's rule is reported and that option keeps its default, and if the stored
//! options together break a rule, all of them are ignored and the device starts on its
//! defaults: never on half a configuration.

use crate::config::ConfigError;
use crate::options::{Key, Layered, OptionId};
use crate::power_on::PowerOn;

/// The record magic.
pub const MAGIC: [u8; 2] = *b"MQ";
/// The record format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Longest key.
pub const MAX_KEY_LEN: usize = 64;
/// Longest value (a broker host name is up to 253 bytes).
pub const MAX_VALUE_LEN: usize = 256;
/// Header size.
pub const HEADER_LEN: usize = 7;
/// Largest record.
pub const MAX_RECORD_LEN: usize = HEADER_LEN + MAX_KEY_LEN + MAX_VALUE_LEN + 4;
/// Most `power_on.` / `last.` keys [`load`] keeps.
pub const MAX_SWITCH_KEYS: usize = 8;

const FLAG_ERASED: u8 = 0x01;

/// One record: a key and its value, or `None` when the record erases the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The key.
    pub key: &'a str,
    /// The value; `None`: erased.
    pub value: Option<&'a str>,
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer bytes than the header or the lengths announce.
    Truncated,
    /// Not the record magic.
    BadMagic,
    /// A format version this code does not read (a foreign or newer record).
    UnsupportedVersion(u8),
    /// Unknown flag bits.
    BadFlags(u8),
    /// Key or value length out of range (or a value on an erased record).
    BadLength,
    /// The CRC does not match: the record is damaged.
    BadCrc,
    /// The key is not printable ASCII or the value not UTF-8.
    BadText,
}

impl RecordError {
    /// A short description.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordError::Truncated => "truncated record",
            RecordError::BadMagic => "not a record (bad magic)",
            RecordError::UnsupportedVersion(_) => "record of an unsupported format version",
            RecordError::BadFlags(_) => "record with unknown flags",
            RecordError::BadLength => "record with a bad length",
            RecordError::BadCrc => "damaged record (CRC mismatch)",
            RecordError::BadText => "record with invalid text",
        }
    }
}

/// Why a record could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// Key empty or longer than [`MAX_KEY_LEN`], or not printable ASCII.
    BadKey,
    /// Value longer than [`MAX_VALUE_LEN`].
    ValueTooLong,
    /// The output buffer is too small.
    BufferTooSmall,
}

/// CRC-32 (IEEE 802.3, reflected, init and final XOR 0xFFFFFFFF), bit by bit: no table in
/// flash; records are short.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn key_ok(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().all(|b| b.is_ascii_graphic())
}

/// Encodes `record` into `out`; returns the length written.
pub fn encode(record: &Record<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    let key = record.key.as_bytes();
    if !key_ok(key) {
        return Err(EncodeError::BadKey);
    }
    let value = record.value.unwrap_or("").as_bytes();
    if value.len() > MAX_VALUE_LEN {
        return Err(EncodeError::ValueTooLong);
    }
    let body = HEADER_LEN + key.len() + value.len();
    let total = body + 4;
    let out = out.get_mut(..total).ok_or(EncodeError::BufferTooSmall)?;
    out[..2].copy_from_slice(&MAGIC);
    out[2] = VERSION;
    out[3] = if record.value.is_none() {
        FLAG_ERASED
    } else {
        0
    };
    // Both lengths were checked above (≤ 64, ≤ 256).
    out[4] = key.len() as u8;
    out[5..7].copy_from_slice(&(value.len() as u16).to_le_bytes());
    out[HEADER_LEN..HEADER_LEN + key.len()].copy_from_slice(key);
    out[HEADER_LEN + key.len()..body].copy_from_slice(value);
    let crc = crc32(&out[..body]);
    out[body..total].copy_from_slice(&crc.to_le_bytes());
    Ok(total)
}

/// Decodes the record at the start of `buf`; returns it and its length.
pub fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), RecordError> {
    let header = buf.get(..HEADER_LEN).ok_or(RecordError::Truncated)?;
    if header[..2] != MAGIC {
        return Err(RecordError::BadMagic);
    }
    if header[2] != VERSION {
        return Err(RecordError::UnsupportedVersion(header[2]));
    }
    let flags = header[3];
    if flags & !FLAG_ERASED != 0 {
        return Err(RecordError::BadFlags(flags));
    }
    let key_len = usize::from(header[4]);
    let value_len = usize::from(u16::from_le_bytes([header[5], header[6]]));
    let erased = flags & FLAG_ERASED != 0;
    if key_len == 0
        || key_len > MAX_KEY_LEN
        || value_len > MAX_VALUE_LEN
        || (erased && value_len != 0)
    {
        return Err(RecordError::BadLength);
    }
    let body = HEADER_LEN + key_len + value_len;
    let total = body + 4;
    let bytes = buf.get(..total).ok_or(RecordError::Truncated)?;
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[body..total]);
    if crc32(&bytes[..body]) != u32::from_le_bytes(crc) {
        return Err(RecordError::BadCrc);
    }
    let key = &bytes[HEADER_LEN..HEADER_LEN + key_len];
    if !key_ok(key) {
        return Err(RecordError::BadText);
    }
    let key = core::str::from_utf8(key).map_err(|_| RecordError::BadText)?;
    let value = core::str::from_utf8(&bytes[HEADER_LEN + key_len..body])
        .map_err(|_| RecordError::BadText)?;
    Ok((
        Record {
            key,
            value: (!erased).then_some(value),
        },
        total,
    ))
}

/// One step of reading a store: a record, or a damaged stretch that was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A valid record at `offset`.
    Record {
        /// Byte offset in the store.
        offset: usize,
        /// The record.
        record: Record<'a>,
    },
    /// Bytes at `offset` that are not a valid record; the reader skipped to the next magic.
    Damaged {
        /// Byte offset in the store.
        offset: usize,
        /// What was wrong.
        error: RecordError,
    },
}

/// Iterates over the records of a store. Erased flash (all `0xFF`) or zeros at the end are
/// the end of the store, not damage.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
    at: usize,
}

/// The records of `buf`.
pub fn records(buf: &[u8]) -> Records<'_> {
    Records { buf, at: 0 }
}

/// A change set written in one piece (the device's apply journal: the staged records of one
/// `apply`, concatenated): usable only whole. Returns its records, or the first damaged stretch,
/// in which case none of it may be applied.
pub fn change_set(buf: &[u8]) -> Result<Records<'_>, (usize, RecordError)> {
    for entry in records(buf) {
        if let Entry::Damaged { offset, error } = entry {
            return Err((offset, error));
        }
    }
    Ok(records(buf))
}

impl<'a> Iterator for Records<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let rest = self.buf.get(self.at..)?;
        if rest.iter().all(|b| *b == 0xFF) || rest.iter().all(|b| *b == 0) {
            self.at = self.buf.len();
            return None;
        }
        let offset = self.at;
        match decode(rest) {
            Ok((record, len)) => {
                self.at += len;
                Some(Entry::Record { offset, record })
            }
            Err(error) => {
                // Resynchronise on the next magic after this position.
                let skip = rest
                    .get(1..)
                    .and_then(|r| r.windows(2).position(|w| w == MAGIC))
                    .map(|p| p + 1)
                    .unwrap_or(rest.len());
                self.at += skip;
                Some(Entry::Damaged { offset, error })
            }
        }
    }
}

/// Something wrong in a store; the affected option keeps its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem<'a> {
    /// A damaged or foreign-format record.
    Damaged {
        /// Byte offset in the store.
        offset: usize,
        /// What was wrong.
        error: RecordError,
    },
    /// A valid record with a key this firmware does not know.
    UnknownKey {
        /// Byte offset in the store.
        offset: usize,
        /// The key.
        key: &'a str,
    },
    /// A stored value breaks its option's rule (never holds the value).
    InvalidValue {
        /// The key.
        key: &'a str,
        /// The rule it breaks.
        error: ConfigError,
    },
    /// Too many `power_on.` / `last.` keys; this one was ignored.
    TooManySwitchKeys {
        /// The key.
        key: &'a str,
    },
    /// The stored options together break a rule: every stored option was ignored.
    Rejected(ConfigError),
}

/// What [`load`] found.
#[derive(Debug, Clone)]
pub struct Loaded<'a> {
    /// The defaults with the usable stored options.
    pub layered: Layered<'a>,
    /// `power_on.<switch>` rules found.
    pub power_on: heapless::Vec<(&'a str, PowerOn), MAX_SWITCH_KEYS>,
    /// `last.<switch>` states found.
    pub last: heapless::Vec<(&'a str, bool), MAX_SWITCH_KEYS>,
}

impl<'a> Loaded<'a> {
    /// The power-on rule of `switch` (default [`PowerOn::Off`]).
    pub fn power_on(&self, switch: &str) -> PowerOn {
        self.power_on
            .iter()
            .find(|(s, _)| *s == switch)
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }

    /// The remembered state of `switch`.
    pub fn last(&self, switch: &str) -> Option<bool> {
        self.last
            .iter()
            .find(|(s, _)| *s == switch)
            .map(|(_, b)| *b)
    }
}

fn upsert<'a, T: Copy, const N: usize>(
    list: &mut heapless::Vec<(&'a str, T), N>,
    key: &'a str,
    value: Option<T>,
) -> Result<(), ()> {
    let found = list.iter().position(|(k, _)| *k == key);
    match (found, value) {
        (Some(i), Some(v)) => {
            list[i].1 = v;
            Ok(())
        }
        (Some(i), None) => {
            list.swap_remove(i);
            Ok(())
        }
        (None, Some(v)) => list.push((key, v)).map_err(|_| ()),
        (None, None) => Ok(()),
    }
}

/// Reads the store `buf` over `defaults`, reporting each problem to `report`.
pub fn load<'a>(
    defaults: Layered<'a>,
    buf: &'a [u8],
    mut report: impl FnMut(Problem<'a>),
) -> Loaded<'a> {
    let mut out = Loaded {
        layered: defaults,
        power_on: heapless::Vec::new(),
        last: heapless::Vec::new(),
    };
    for entry in records(buf) {
        let (offset, record) = match entry {
            Entry::Record { offset, record } => (offset, record),
            Entry::Damaged { offset, error } => {
                report(Problem::Damaged { offset, error });
                continue;
            }
        };
        let Some(key) = Key::parse(record.key) else {
            report(Problem::UnknownKey {
                offset,
                key: record.key,
            });
            continue;
        };
        if let Some(v) = record.value {
            if let Err(error) = key.check_value(v) {
                report(Problem::InvalidValue {
                    key: record.key,
                    error,
                });
                continue;
            }
        }
        let stored = match key {
            Key::Option(id) => {
                out.layered.overrides.put(id, record.value);
                Ok(())
            }
            Key::PowerOn(s) => upsert(&mut out.power_on, s, record.value.and_then(PowerOn::parse)),
            Key::LastState(s) => upsert(&mut out.last, s, record.value.map(|v| v == "true")),
        };
        if stored.is_err() {
            report(Problem::TooManySwitchKeys { key: record.key });
        }
    }
    if let Err(e) = out.layered.effective() {
        // Try each stored option alone on the defaults to name the culprits; the result
        // stays the defaults either way.
        let mut alone = defaults;
        for (id, v) in out.layered.overrides.iter() {
            alone.overrides = crate::options::Overrides::new();
            alone.overrides.put(id, Some(v));
            if let Err(error) = alone.effective() {
                if error.field == id.name() {
                    report(Problem::InvalidValue {
                        key: id.name(),
                        error,
                    });
                }
            }
        }
        report(Problem::Rejected(e));
        out.layered.overrides = defaults.overrides;
    }
    out
}

/// Writes the records of `layered`'s overrides, then `extra` records (power-on rules, last
/// states), into `out`, as a compacted store; returns the length written.
pub fn write_all(
    layered: &Layered<'_>,
    extra: &[Record<'_>],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut at = 0;
    for (id, value) in layered.overrides.iter() {
        at += encode(
            &Record {
                key: id.name(),
                value: Some(value),
            },
            out.get_mut(at..).ok_or(EncodeError::BufferTooSmall)?,
        )?;
    }
    for r in extra {
        at += encode(r, out.get_mut(at..).ok_or(EncodeError::BufferTooSmall)?)?;
    }
    Ok(at)
}

/// The option a store key names, if it is an option.
pub fn option_of(key: &str) -> Option<OptionId> {
    match Key::parse(key) {
        Some(Key::Option(id)) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    // Some imports and helpers serve only the tests that need both profiles.
    #![cfg_attr(
        not(all(feature = "aliyun", feature = "selfhosted")),
        allow(unused_imports, dead_code)
    )]
    use super::*;
    use crate::config::{ConfigProblem, DeviceConfig};
    use crate::options::{Extra, Source};
    use std::vec::Vec;

    fn defaults() -> Layered<'static> {
        Layered::new(
            DeviceConfig {
                profile: Some("self-hosted"),
                broker_host: Some("mqtt.local"),
                device_id: Some("board-7"),
                username: Some("board"),
                password: Some("hunter2-pass"),
                ..DeviceConfig::new()
            },
            Extra::new(),
        )
    }

    fn rec(key: &str, value: Option<&str>) -> Vec<u8> {
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = encode(&Record { key, value }, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn crc32_check_value() {
        // The CRC-32 check value of "123456789" (zlib.crc32 gives 0xcbf43926).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn layout_is_as_documented() {
        let r = rec("broker_port", Some("18883"));
        assert_eq!(&r[..7], &[b'M', b'Q', 1, 0, 11, 5, 0]);
        assert_eq!(&r[7..18], b"broker_port");
        assert_eq!(&r[18..23], b"18883");
        assert_eq!(r.len(), 27);
        // Computed independently: python3 -c "import zlib;
        // print(hex(zlib.crc32(b'MQ\\x01\\x00\\x0b\\x05\\x00broker_port18883')))"
        assert_eq!(&r[23..], &0x0D97_26B8u32.to_le_bytes());
        let erased = rec("password", None);
        assert_eq!(&erased[..7], &[b'M', b'Q', 1, 1, 8, 0, 0]);
        assert_eq!(decode(&erased).unwrap().0.value, None);
    }

    #[test]
    fn change_set_is_taken_whole_or_not_at_all() {
        let mut set = rec("broker_port", Some("18883"));
        set.extend(rec("password", None));
        set.extend(rec("broker_port", Some("8884")));
        let keys: Vec<_> = change_set(&set)
            .unwrap()
            .map(|e| match e {
                Entry::Record { record, .. } => (record.key, record.value),
                Entry::Damaged { .. } => unreachable!("checked whole"),
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("broker_port", Some("18883")),
                ("password", None),
                ("broker_port", Some("8884"))
            ]
        );
        // Empty, and trailing erased flash, are fine.
        assert_eq!(change_set(&[]).unwrap().count(), 0);
        let mut erased_tail = set.clone();
        erased_tail.extend([0xFF; 16]);
        assert_eq!(change_set(&erased_tail).unwrap().count(), 3);
        // Cut anywhere inside a record, or one bit flipped: refused, naming where.
        let second = rec("broker_port", Some("18883")).len();
        for cut in 1..set.len() {
            let at_boundary = [second, second + rec("password", None).len()].contains(&cut);
            assert_eq!(
                change_set(&set[..cut]).is_err(),
                !at_boundary,
                "cut at {cut}"
            );
        }
        let mut flipped = set.clone();
        flipped[second + 9] ^= 0x10;
        assert_eq!(
            change_set(&flipped).err(),
            Some((second, RecordError::BadCrc))
        );
    }

    #[test]
    fn round_trip_and_errors() {
        let r = rec("password", Some("n3w pass ü"));
        let (d, n) = decode(&r).unwrap();
        assert_eq!(
            (d.key, d.value, n),
            ("password", Some("n3w pass ü"), r.len())
        );
        for cut in 0..r.len() {
            assert_eq!(decode(&r[..cut]), Err(RecordError::Truncated), "{cut}");
        }
        let mut bad = r.clone();
        bad[10] ^= 1;
        assert_eq!(decode(&bad), Err(RecordError::BadCrc));
        let mut v2 = r.clone();
        v2[2] = 2;
        assert_eq!(decode(&v2), Err(RecordError::UnsupportedVersion(2)));
        let mut flags = r.clone();
        flags[3] = 0x80;
        assert_eq!(decode(&flags), Err(RecordError::BadFlags(0x80)));
        assert_eq!(
            decode(b"XX\x01\x00\x01\x00\x00a"),
            Err(RecordError::BadMagic)
        );
        assert_eq!(
            decode(b"MQ\x01\x00\x00\x00\x00"),
            Err(RecordError::BadLength)
        );
        assert_eq!(
            encode(
                &Record {
                    key: "",
                    value: None
                },
                &mut [0; 64]
            ),
            Err(EncodeError::BadKey)
        );
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(
            encode(
                &Record {
                    key: "k",
                    value: Some(&long)
                },
                &mut [0; 512]
            ),
            Err(EncodeError::ValueTooLong)
        );
        assert_eq!(
            encode(
                &Record {
                    key: "k",
                    value: Some("v")
                },
                &mut [0; 8]
            ),
            Err(EncodeError::BufferTooSmall)
        );
    }

    // Uses both profiles: runs in the default (all-features) build.
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn load_takes_the_last_record_and_reports_damage() {
        let mut store = Vec::new();
        store.extend(rec("broker_port", Some("1")));
        store.extend(rec("power_on.Relay1", Some("last")));
        let mut damaged = rec("keepalive_s", Some("90"));
        damaged[9] ^= 0x20;
        store.extend(&damaged);
        store.extend(rec("broker_port", Some("18883")));
        store.extend(rec("nonsense", Some("1")));
        store.extend(rec("keepalive_s", Some("99999")));
        store.extend(rec("last.Relay1", Some("true")));
        store.extend(rec("password", Some("n3w")));
        store.extend(rec("password", None));
        store.extend([0xFF; 32]);
        let mut problems = Vec::new();
        let loaded = load(defaults(), &store, |p| problems.push(p));
        let e = loaded.layered.effective().unwrap();
        assert_eq!(e.config.broker_port, 18883);
        assert_eq!(e.config.keepalive_s, 60, "damaged and invalid: default");
        assert_eq!(e.config.password, Some("hunter2-pass"), "erased: default");
        assert_eq!(loaded.layered.source(OptionId::BrokerPort), Source::Stored);
        assert_eq!(loaded.power_on("Relay1"), PowerOn::Last);
        assert_eq!(loaded.power_on("LED"), PowerOn::Off);
        assert_eq!(loaded.last("Relay1"), Some(true));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(matches!(
            problems[0],
            Problem::Damaged {
                error: RecordError::BadCrc,
                ..
            }
        ));
        assert!(matches!(
            problems[1],
            Problem::UnknownKey {
                key: "nonsense",
                ..
            }
        ));
        assert!(matches!(
            problems[2],
            Problem::InvalidValue {
                key: "keepalive_s",
                ..
            }
        ));
    }

    // Uses both profiles: runs in the default (all-features) build.
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn garbage_and_inconsistent_stores_fall_back_to_defaults() {
        let mut problems = Vec::new();
        let loaded = load(defaults(), b"\x00garbage that is not a store MQ\x01", |p| {
            problems.push(p)
        });
        assert_eq!(loaded.layered, defaults());
        assert!(!problems.is_empty());
        assert!(problems
            .iter()
            .all(|p| matches!(p, Problem::Damaged { .. })));

        // Each value fine alone, together invalid: nothing stored is used.
        let mut store = rec("backoff_min_ms", Some("600000"));
        store.extend(rec("backoff_max_ms", Some("1000")));
        let mut problems = Vec::new();
        let loaded = load(defaults(), &store, |p| problems.push(p));
        assert_eq!(loaded.layered, defaults());
        assert!(matches!(
            problems.last(),
            Some(Problem::Rejected(ConfigError {
                field: "backoff_max_ms",
                problem: ConfigProblem::Conflict { .. }
            }))
        ));
    }

    // Uses both profiles: runs in the default (all-features) build.
    #[cfg(all(feature = "aliyun", feature = "selfhosted"))]
    #[test]
    fn write_all_then_load_round_trips() {
        let mut l = defaults();
        l.set(OptionId::BrokerPort, "18883").unwrap();
        l.set(OptionId::Password, "n3w").unwrap();
        let mut buf = [0u8; 1024];
        let n = write_all(
            &l,
            &[Record {
                key: "power_on.LED",
                value: Some("on"),
            }],
            &mut buf,
        )
        .unwrap();
        let loaded = load(defaults(), &buf[..n], |p| panic!("{p:?}"));
        assert_eq!(loaded.layered, l);
        assert_eq!(loaded.power_on("LED"), PowerOn::On);
        assert_eq!(option_of("password"), Some(OptionId::Password));
        assert_eq!(option_of("power_on.LED"), None);
    }
}
