//! Alibaba Cloud IoT Platform "Alink" thing model, sans-IO: topics are built into
//! [`heapless::String`]s, payloads are read from and written into caller buffers.
//!
//! - [`topics`]: every topic of one device (`/sys/{pk}/{dn}/…`, `/ext/ntp/{pk}/{dn}/…`), the
//!   subscription list, and classification of inbound topics.
//! - [`ids`]: per-connection message ids and the table of property posts awaiting a reply.
//! - [`property`]: property post (+ `post_reply` matching) and property set (+ `set_reply`).
//! - [`service`]: service calls (`Toggle`) and their replies.
//! - [`event`]: event post.
//! - [`ntp`]: time over MQTT.
//!
//! # Reply codes
//!
//! Replies to the cloud carry these codes (names from Alibaba's platform error table:
//! 200 "success", 404 "service not found", 460 "request parameter error", 500 "service error"):
//!
//! | code | [`code`] const | when |
//! |---|---|---|
//! | 200 | `OK` | command applied |
//! | 460 | `PARAM_ERROR` | malformed JSON, missing/unusable `id`, missing `params`, unknown property, wrong type, duplicate property |
//! | 404 | `SERVICE_NOT_FOUND` | service identifier not implemented |
//! | 500 | `INTERNAL_ERROR` | command valid but an output failed |
//!
//! # Request ids
//!
//! A reply must echo the request `id`. An id that is a JSON string of 1..=[`MAX_ID_LEN`] characters
//! of `[A-Za-z0-9_.:-]`, or a JSON integer, is echoed (as a string). When the payload is not JSON,
//! or the id is absent or unusable, the command is refused (nothing changes) and the error reply
//! carries the id [`NO_ID`] (`"0"`); the device's own message ids start at 1 so `"0"` never names a
//! real message.
//!
//! # Profile rules
//!
//! The platform supports neither will messages, nor retained messages, nor QoS 2 ([`MAX_QOS`],
//! [`WILL_ALLOWED`], [`RETAIN_ALLOWED`]); keepalive must be within
//! [`KEEPALIVE_MIN_S`]`..=`[`KEEPALIVE_MAX_S`] seconds.

pub mod event;
pub mod ids;
pub mod ntp;
pub mod property;
pub mod service;
pub mod topics;

use serde::Serialize;

use crate::codec::QoS;
use crate::switch::CommandError;

/// Highest QoS the platform accepts (no QoS 2).
pub const MAX_QOS: QoS = QoS::AtLeastOnce;
/// The platform does not support a will message: CONNECT must carry none.
pub const WILL_ALLOWED: bool = false;
/// The platform does not support retained messages: every PUBLISH must have retain = 0.
pub const RETAIN_ALLOWED: bool = false;
/// Smallest keepalive the platform accepts, in seconds.
pub const KEEPALIVE_MIN_S: u16 = 30;
/// Largest keepalive the platform accepts, in seconds.
pub const KEEPALIVE_MAX_S: u16 = 1200;

/// Whether the platform accepts `qos` (0 or 1).
pub fn qos_allowed(qos: QoS) -> bool {
    qos <= MAX_QOS
}

/// Reply codes this device sends (see the module docs).
pub mod code {
    /// Success.
    pub const OK: u16 = 200;
    /// Service identifier not implemented.
    pub const SERVICE_NOT_FOUND: u16 = 404;
    /// Request parameter error: malformed, missing, unknown or wrongly typed parameters.
    pub const PARAM_ERROR: u16 = 460;
    /// The command was valid but the device failed to carry it out (output error).
    pub const INTERNAL_ERROR: u16 = 500;
}

/// The reply code for a command error.
pub fn error_code(error: CommandError) -> u16 {
    match error {
        CommandError::UnknownCommand => code::SERVICE_NOT_FOUND,
        CommandError::Output(_) => code::INTERNAL_ERROR,
        CommandError::MalformedJson
        | CommandError::MissingField
        | CommandError::UnknownSwitch
        | CommandError::WrongType
        | CommandError::DuplicateSwitch
        | CommandError::Conflict => code::PARAM_ERROR,
    }
}

/// Id used in an error reply when the request id cannot be read.
pub const NO_ID: &str = "0";
/// Longest request id echoed in a reply.
pub const MAX_ID_LEN: usize = 20;
/// Most members accepted in one object of an inbound message (more is malformed).
pub const MAX_MEMBERS: usize = 16;
/// Reply buffers must be at least this long; handlers check it before changing anything, so a
/// reply can always be written.
pub const REPLY_CAPACITY: usize = 128;

pub use crate::json::BufferTooSmall;

/// Result of handling a command (property set or service call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// Length of the reply written at the start of the output buffer; publish it on the reply topic.
    pub reply_len: usize,
    /// The code in the reply.
    pub code: u16,
    /// A switch changed: post the properties now.
    pub report_state: bool,
    /// Why the command was refused or failed, if it was.
    pub error: Option<CommandError>,
}

/// The start of handling a downlink request: checks that `out` can hold any reply, then parses
/// `payload` into `obj` (with `params` as the nested object) and reads its id, if usable.
/// `Ok((id, Err(MalformedJson)))` when the payload is not an object this parser accepts.
#[allow(clippy::type_complexity)]
pub(crate) fn parse_request<'p>(
    payload: &'p [u8],
    out: &[u8],
    obj: &mut crate::json::Object<'p, MAX_MEMBERS>,
) -> Result<
    (
        Option<heapless::String<MAX_ID_LEN>>,
        Result<(), CommandError>,
    ),
    BufferTooSmall,
> {
    if out.len() < REPLY_CAPACITY {
        return Err(BufferTooSmall);
    }
    Ok(
        match crate::json::parse_object_into(payload, Some("params"), obj) {
            Err(_) => (None, Err(CommandError::MalformedJson)),
            Ok(()) => (request_id(obj.get("id")), Ok(())),
        },
    )
}

/// The request id to echo: see the module docs.
pub(crate) fn request_id(
    value: Option<crate::json::Scalar<'_>>,
) -> Option<heapless::String<MAX_ID_LEN>> {
    use crate::json::Scalar;
    let mut id = heapless::String::new();
    match value? {
        Scalar::Str(s) if crate::json::is_safe_id(s, MAX_ID_LEN) => id.push_str(s).ok()?,
        Scalar::UInt(n) => crate::json::push_decimal(&mut id, n).ok()?,
        _ => return None,
    }
    Some(id)
}

/// `{}`.
#[derive(Serialize)]
pub(crate) struct Empty {}

/// A command reply: `{"id":"…","code":…,"data":…}`.
#[derive(Serialize)]
pub(crate) struct Reply<'a, D: Serialize> {
    pub id: &'a str,
    pub code: u16,
    pub data: D,
}

/// An uplink request: `{"id":"…","version":"1.0","params":…,"method":"…"}`.
#[derive(Serialize)]
pub(crate) struct Request<'a, P: Serialize> {
    pub id: &'a str,
    pub version: &'static str,
    pub params: P,
    pub method: &'a str,
}

/// Protocol version sent in uplink requests.
pub(crate) const VERSION: &str = "1.0";

/// Serializes `value` into `out`, returning the length.
pub(crate) fn write_json<T: Serialize>(value: &T, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    serde_json_core::to_slice(value, out).map_err(|_| BufferTooSmall)
}

/// Writes the reply for a handled command (its data on success, empty data and the error's code
/// otherwise) and describes the outcome.
pub(crate) fn reply<D: Serialize>(
    id: Option<&str>,
    result: Result<D, CommandError>,
    report_state: bool,
    out: &mut [u8],
) -> Result<Handled, BufferTooSmall> {
    let id = id.unwrap_or(NO_ID);
    let (code, reply_len, error) = match result {
        Ok(data) => {
            let reply = Reply {
                id,
                code: code::OK,
                data,
            };
            (code::OK, write_json(&reply, out)?, None)
        }
        Err(e) => {
            let code = error_code(e);
            let reply = Reply {
                id,
                code,
                data: Empty {},
            };
            (code, write_json(&reply, out)?, Some(e))
        }
    };
    Ok(Handled {
        reply_len,
        code,
        report_state,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_rules() {
        assert!(qos_allowed(QoS::AtMostOnce));
        assert!(qos_allowed(QoS::AtLeastOnce));
        assert!(!qos_allowed(QoS::ExactlyOnce));
        const { assert!(!WILL_ALLOWED && !RETAIN_ALLOWED) };
    }

    #[test]
    fn ids_to_echo() {
        use crate::json::Scalar;
        assert_eq!(request_id(Some(Scalar::Str("123"))).as_deref(), Some("123"));
        assert_eq!(request_id(Some(Scalar::UInt(77))).as_deref(), Some("77"));
        assert_eq!(request_id(Some(Scalar::Str("a\\\"b"))), None);
        assert_eq!(request_id(Some(Scalar::Str(""))), None);
        assert_eq!(request_id(Some(Scalar::Str("123456789012345678901"))), None);
        assert_eq!(request_id(Some(Scalar::Bool(true))), None);
        assert_eq!(request_id(None), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::ids::PendingPosts;
    use super::ntp::NtpResponse;
    use super::property::{handle_property_set, match_post_reply};
    use super::service::handle_service;
    use crate::switch::testing::Recorder;
    use crate::switch::SwitchBank;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Valid-looking messages with bytes changed, to reach deep into the parser.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let seeds = prop_oneof![
            Just(br#"{"id":"1","params":{"Relay1":1,"LED":true},"version":"1.0"}"#.to_vec()),
            Just(br#"{"id":"2","params":{"name":"LED"}}"#.to_vec()),
            Just(br#"{"code":200,"data":{},"id":"1","message":"success"}"#.to_vec()),
            Just(br#"{"deviceSendTime":"1","serverRecvTime":2,"serverSendTime":"3"}"#.to_vec()),
        ];
        (
            seeds,
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        )
            .prop_map(|(mut s, edits)| {
                for (at, b) in edits {
                    let len = s.len();
                    s[at % len] = b;
                }
                s
            })
    }

    proptest! {
        #[test]
        fn handlers_never_panic(payload in prop_oneof![proptest::collection::vec(any::<u8>(), 0..80), mutated()]) {
            let mut bank = SwitchBank::new(["Relay1", "LED"]).unwrap();
            let mut out = Recorder::default();
            let mut buf = [0u8; super::REPLY_CAPACITY];
            let h = handle_property_set(&payload, &mut bank, &mut out, &mut buf).unwrap();
            // A refused command never touched an output.
            if h.error.is_some() {
                prop_assert!(out.calls.is_empty());
                prop_assert_eq!(bank.states(), &[false, false]);
            }
            prop_assert!(h.reply_len <= buf.len());
            let _ = handle_service("Toggle", &payload, &mut bank, &mut out, &mut buf).unwrap();
            let mut pending = PendingPosts::<2>::new();
            let _ = match_post_reply(&payload, &mut pending);
            if let Ok(r) = NtpResponse::parse(&payload) {
                let _ = r.utc_ms(u64::MAX);
            }
            #[cfg(feature = "selfhosted")]
            let _ = crate::selfhosted::handle_command(&payload, &mut bank, &mut out, &mut buf).unwrap();
        }
    }
}
