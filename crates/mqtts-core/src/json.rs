//! Reading JSON objects whose member types are only known at run time.
//!
//! serde-json-core cannot deserialize "any" value, yet commands must tell a wrong type (`"on":"yes"`)
//! from broken JSON, and accept both `1` and `true`, or both `"123"` and `123`. So objects are walked
//! with serde-json-core (which checks the syntax and drives the parse) and every member value is
//! classified as a [`Scalar`]. serde-json-core skips bare tokens (numbers, `true`, `null`) without
//! showing them; because keys are borrowed from the input, the raw token is found right after its
//! key and classified here, strictly. Nesting is limited to [`MAX_DEPTH`] so hostile input such as
//! `[[[[…` cannot exhaust the stack.

use core::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// The output buffer is too small for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall;

/// Appends the decimal digits of `n` to `s`, without `core::fmt` or 64-bit division.
pub(crate) fn push_decimal<const L: usize>(
    s: &mut heapless::String<L>,
    mut n: u64,
) -> Result<(), ()> {
    // u64::MAX has 20 digits; they are produced last first. (Zeroed, not filled with b'0':
    // zeroing reuses the memory-clearing routine every image links, a fill links `memset`.)
    let mut digits = [0u8; 20];
    let mut len = 0;
    for slot in digits.iter_mut().rev() {
        let (q, r) = crate::num::div_rem(n, 10);
        *slot = b'0' + r as u8;
        len += 1;
        n = q;
        if n == 0 {
            break;
        }
    }
    for &d in digits.iter().skip(digits.len() - len) {
        s.push(char::from(d)).map_err(|_| ())?;
    }
    Ok(())
}

/// Deepest nesting accepted anywhere in a message (the outer object is depth 1).
pub(crate) const MAX_DEPTH: u8 = 4;

/// The class of one member value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar<'a> {
    /// A string, raw (escape sequences are left as they are in the input).
    Str(&'a str),
    /// A non-negative integer that fits `u64`.
    UInt(u64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object (its members are collected only for the requested nested key).
    Object,
    /// Anything else: arrays, negative, fractional or too large numbers.
    Other,
}

/// The input is not JSON this module accepts (syntax, too many members, too deep, not an object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonError;

/// Members of one object, in input order. Keys are raw (not unescaped).
pub(crate) type Members<'a, const M: usize> = heapless::Vec<(&'a str, Scalar<'a>), M>;

/// A parsed top-level object, plus the members of one nested object if asked for.
///
/// Filled in place by [`parse_object_into`]: at `M` = 16 it is ~780 bytes, and returning it by
/// value made every layer of the parse keep its own copy on the stack.
#[derive(Debug)]
pub(crate) struct Object<'a, const M: usize> {
    /// Top-level members.
    pub members: Members<'a, M>,
    /// Members of the value of the nested key; meaningful only when `has_nested`.
    nested: Members<'a, M>,
    /// The nested key was present and its value was an object.
    has_nested: bool,
}

impl<'a, const M: usize> Object<'a, M> {
    /// An empty object, to be filled by [`parse_object_into`].
    pub const fn new() -> Self {
        Object {
            members: Members::new(),
            nested: Members::new(),
            has_nested: false,
        }
    }

    /// The value of top-level member `key`, if present.
    pub fn get(&self, key: &str) -> Option<Scalar<'a>> {
        self.members
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// Members of the value of the nested key, if that value was an object.
    pub fn nested(&self) -> Option<&[(&'a str, Scalar<'a>)]> {
        self.has_nested.then_some(self.nested.as_slice())
    }
}

/// Parses `input` as one JSON object of at most `M` members (and at most `M` in the nested object
/// named `nested_key`) into `obj`, replacing what it held. Duplicate top-level keys are kept;
/// callers decide. On error `obj` holds an unspecified part of the input.
pub(crate) fn parse_object_into<'a, const M: usize>(
    input: &'a [u8],
    nested_key: Option<&str>,
    obj: &mut Object<'a, M>,
) -> Result<(), JsonError> {
    obj.members.clear();
    obj.nested.clear();
    obj.has_nested = false;
    let mut de = serde_json_core::de::Deserializer::new(input, None);
    de::Deserializer::deserialize_map(
        &mut de,
        ObjectVisitor::<M> {
            input,
            depth: 1,
            nested_key,
            members: &mut obj.members,
            nested: Some(NestedSlot {
                members: &mut obj.nested,
                found: &mut obj.has_nested,
            }),
        },
    )
    .map_err(|_| JsonError)?;
    de.end().map(|_| ()).map_err(|_| JsonError)
}

/// Where the members of the nested object go.
struct NestedSlot<'n, 'a, const M: usize> {
    members: &'n mut Members<'a, M>,
    /// Set when the nested key's value was an object.
    found: &'n mut bool,
}

/// Collects the members of one object into `members`.
struct ObjectVisitor<'a, 'n, 'k, const M: usize> {
    input: &'a [u8],
    depth: u8,
    /// Key whose object value is collected into `nested` (top level only).
    nested_key: Option<&'k str>,
    members: &'n mut Members<'a, M>,
    nested: Option<NestedSlot<'n, 'a, M>>,
}

impl<'de, const M: usize> Visitor<'de> for ObjectVisitor<'de, '_, '_, M> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<&'de str>()? {
            let wanted = self.nested_key == Some(key);
            let nested = if wanted { self.nested.take() } else { None };
            if wanted && nested.is_none() {
                return Err(de::Error::custom("duplicate nested key"));
            }
            let value = map.next_value_seed(ValueSeed::<M> {
                input: self.input,
                key,
                depth: self.depth,
                nested,
            })?;
            self.members
                .push((key, value))
                .map_err(|_| de::Error::custom("too many members"))?;
        }
        Ok(())
    }
}

/// Classifies one member value; collects it if it is the wanted nested object.
struct ValueSeed<'a, 'n, const M: usize> {
    input: &'a [u8],
    key: &'a str,
    /// Depth of the object that holds this value.
    depth: u8,
    nested: Option<NestedSlot<'n, 'a, M>>,
}

impl<'de, const M: usize> DeserializeSeed<'de> for ValueSeed<'de, '_, M> {
    type Value = Scalar<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_ignored_any(self)
    }
}

impl<'de, const M: usize> Visitor<'de> for ValueSeed<'de, '_, M> {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(v))
    }

    fn visit_str<E: de::Error>(self, _v: &str) -> Result<Scalar<'de>, E> {
        // Only reachable with an unescape buffer, which is never given.
        Err(E::custom("unexpected owned string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        raw_token(self.input, self.key)
            .and_then(classify)
            .ok_or_else(|| E::custom("bad token"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
        Drain { depth: self.depth }.visit_seq(seq)?;
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
        match self.nested {
            Some(slot) => {
                if self.depth >= MAX_DEPTH {
                    return Err(de::Error::custom("too deep"));
                }
                ObjectVisitor::<M> {
                    input: self.input,
                    depth: self.depth + 1,
                    nested_key: None,
                    members: slot.members,
                    nested: None,
                }
                .visit_map(map)?;
                *slot.found = true;
            }
            None => Drain { depth: self.depth }.visit_map(map)?,
        }
        Ok(Scalar::Object)
    }
}

/// Skips a value, with a nesting limit.
struct Drain {
    /// Depth of the container that holds the value.
    depth: u8,
}

impl Drain {
    fn inner(&self) -> Result<Drain, ()> {
        if self.depth >= MAX_DEPTH {
            Err(())
        } else {
            Ok(Drain {
                depth: self.depth + 1,
            })
        }
    }
}

impl<'de> DeserializeSeed<'de> for Drain {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_ignored_any(self)
    }
}

impl<'de> Visitor<'de> for Drain {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_borrowed_str<E: de::Error>(self, _v: &'de str) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _v: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner().map_err(|_| de::Error::custom("too deep"))?;
        while seq
            .next_element_seed(Drain { depth: inner.depth })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner().map_err(|_| de::Error::custom("too deep"))?;
        while map.next_key::<&'de str>()?.is_some() {
            map.next_value_seed(Drain { depth: inner.depth })?;
        }
        Ok(())
    }
}

/// The bytes of the bare value token that follows `key` (a slice of `input`) and its colon.
fn raw_token<'a>(input: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let key_at = (key.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
    let mut i = key_at.checked_add(key.len())?;
    if input.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    i = skip_ws(input, i);
    if input.get(i) != Some(&b':') {
        return None;
    }
    i = skip_ws(input, i + 1);
    let start = i;
    while let Some(&b) = input.get(i) {
        if matches!(b, b',' | b'}' | b']') {
            break;
        }
        i += 1;
    }
    let mut end = i;
    while end > start && matches!(input.get(end - 1), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        end -= 1;
    }
    input.get(start..end)
}

fn skip_ws(input: &[u8], mut i: usize) -> usize {
    while matches!(input.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// Strict classification of a bare JSON token; `None` if it is not valid JSON.
fn classify(token: &[u8]) -> Option<Scalar<'static>> {
    match token {
        b"true" => return Some(Scalar::Bool(true)),
        b"false" => return Some(Scalar::Bool(false)),
        b"null" => return Some(Scalar::Null),
        _ => {}
    }
    if let Some(n) = parse_u64(token) {
        return Some(Scalar::UInt(n));
    }
    if is_number(token) {
        Some(Scalar::Other)
    } else {
        None
    }
}

/// Parses a JSON integer without sign, fraction or leading zeros; `None` otherwise or on overflow.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    match digits {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ => digits.iter().try_fold(0u64, |acc, &c| {
            if c.is_ascii_digit() {
                acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            } else {
                None
            }
        }),
    }
}

/// JSON number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_number(t: &[u8]) -> bool {
    let mut i = 0;
    let at = |i: usize| t.get(i).copied();
    if at(i) == Some(b'-') {
        i += 1;
    }
    match at(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while matches!(at(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if at(i) == Some(b'.') {
        i += 1;
        let from = i;
        while matches!(at(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == from {
            return false;
        }
    }
    if matches!(at(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(at(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let from = i;
        while matches!(at(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == from {
            return false;
        }
    }
    i == t.len()
}

/// Whether `s` can be echoed inside a JSON string without escaping and is a plausible message id:
/// 1..=`max` chars of `[A-Za-z0-9_.:-]`.
pub(crate) fn is_safe_id(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Object<'_, 8>, JsonError> {
        let mut o = Object::new();
        parse_object_into::<8>(s.as_bytes(), Some("params"), &mut o).map(|()| o)
    }

    #[test]
    fn push_decimal_writes_every_u64() {
        for (n, text) in [
            (0u64, "0"),
            (7, "7"),
            (1_700_000_000_012, "1700000000012"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut s = heapless::String::<20>::new();
            assert_eq!(push_decimal(&mut s, n), Ok(()));
            assert_eq!(s.as_str(), text);
        }
        let mut short = heapless::String::<3>::new();
        assert_eq!(push_decimal(&mut short, 1234), Err(()));
    }

    #[test]
    fn classifies_members() {
        let o = parse(r#" {"a":1, "b" : true,"c":"x\"y","d":null,"e":-1,"f":1.5e3,"g":[1,[2]],"h":{"x":{}}} "#)
            .unwrap();
        assert_eq!(o.get("a"), Some(Scalar::UInt(1)));
        assert_eq!(o.get("b"), Some(Scalar::Bool(true)));
        assert_eq!(o.get("c"), Some(Scalar::Str(r#"x\"y"#)));
        assert_eq!(o.get("d"), Some(Scalar::Null));
        assert_eq!(o.get("e"), Some(Scalar::Other));
        assert_eq!(o.get("f"), Some(Scalar::Other));
        assert_eq!(o.get("g"), Some(Scalar::Other));
        assert_eq!(o.get("h"), Some(Scalar::Object));
        assert!(o.nested().is_none());
    }

    #[test]
    fn collects_nested() {
        let o = parse(r#"{"id":"1","params":{"Relay1":1,"LED":false}}"#).unwrap();
        let n = o.nested().unwrap();
        assert_eq!(
            n,
            &[("Relay1", Scalar::UInt(1)), ("LED", Scalar::Bool(false))]
        );
    }

    #[test]
    fn rejects_bad_json() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a":tru}"#,
            r#"{"a":01}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1} x"#,
            r#"{"a":1e}"#,
            r#"{"a":[[[[[1]]]]]}"#,
            r#"{"params":{"x":{"y":{"z":{}}}}}"#,
            r#"{"params":{},"params":{}}"#,
            r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}"#,
        ] {
            assert_eq!(parse(bad).err(), Some(JsonError), "{bad}");
        }
    }

    #[test]
    fn u64_limits() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(
            parse(r#"{"a":18446744073709551616}"#).unwrap().get("a"),
            Some(Scalar::Other)
        );
    }
}
