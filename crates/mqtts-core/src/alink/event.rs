//! Event post: `/sys/{pk}/{dn}/thing/event/{identifier}/post`.
//!
//! ```json
//! {"id":"9","version":"1.0","params":{"Cause":"tls_handshake","Count":2},"method":"thing.event.Fault.post"}
//! ```
//!
//! The cloud answers on `…/{identifier}/post_reply` like a property post; this device does not
//! subscribe to event replies (events are fire-and-forget for it).

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::ids::MessageId;
use super::{write_json, BufferTooSmall, Request};
use crate::switch::is_identifier;

/// One event output parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventValue<'a> {
    /// An `int` parameter (Alink `bool` parameters are 0/1 ints).
    Int(i64),
    /// A `text` parameter; escaped as needed.
    Text(&'a str),
}

/// An event cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    /// The event identifier or a parameter name is not 1..=50 chars of `[A-Za-z0-9_]`.
    InvalidIdentifier,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl From<BufferTooSmall> for EventError {
    fn from(_: BufferTooSmall) -> Self {
        EventError::BufferTooSmall
    }
}

struct Params<'b, 'a>(&'b [(&'a str, EventValue<'a>)]);

impl Serialize for Params<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (name, value) in self.0 {
            match value {
                EventValue::Int(n) => map.serialize_entry(name, n)?,
                EventValue::Text(t) => map.serialize_entry(name, t)?,
            }
        }
        map.end()
    }
}

/// Writes the post of event `identifier` with `params` into `out`; returns its length.
pub fn write_event_post(
    id: MessageId,
    identifier: &str,
    params: &[(&str, EventValue<'_>)],
    out: &mut [u8],
) -> Result<usize, EventError> {
    if !is_identifier(identifier) || !params.iter().all(|(k, _)| is_identifier(k)) {
        return Err(EventError::InvalidIdentifier);
    }
    let mut method: heapless::String<72> = heapless::String::new();
    for part in ["thing.event.", identifier, ".post"] {
        method
            .push_str(part)
            .map_err(|_| EventError::InvalidIdentifier)?;
    }
    let id = id.to_str();
    Ok(write_json(
        &Request {
            id: &id,
            version: super::VERSION,
            params: Params(params),
            method: &method,
        },
        out,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_payload_exact() {
        let mut buf = [0u8; 160];
        let n = write_event_post(
            MessageId::new(9).unwrap(),
            "Fault",
            &[
                ("Cause", EventValue::Text("tls_handshake")),
                ("Count", EventValue::Int(2)),
            ],
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            r#"{"id":"9","version":"1.0","params":{"Cause":"tls_handshake","Count":2},"method":"thing.event.Fault.post"}"#
        );
        let n = write_event_post(MessageId::new(10).unwrap(), "Boot", &[], &mut buf).unwrap();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            r#"{"id":"10","version":"1.0","params":{},"method":"thing.event.Boot.post"}"#
        );
    }

    #[test]
    fn event_errors() {
        let mut buf = [0u8; 160];
        let id = MessageId::new(1).unwrap();
        assert_eq!(
            write_event_post(id, "a.b", &[], &mut buf),
            Err(EventError::InvalidIdentifier)
        );
        assert_eq!(
            write_event_post(id, "E", &[("x\"", EventValue::Int(1))], &mut buf),
            Err(EventError::InvalidIdentifier)
        );
        assert_eq!(
            write_event_post(id, "E", &[], &mut buf[..10]),
            Err(EventError::BufferTooSmall)
        );
    }
}
