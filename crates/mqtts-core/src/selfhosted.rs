//! Self-hosted broker profile (Mosquitto, EMQX): the same switches and telemetry on plain topics
//! under `devices/{id}/`.
//!
//! # Topics
//!
//! | topic | direction | QoS / retain | payload |
//! |---|---|---|---|
//! | `devices/{id}/status` | up | QoS 1, **retained** | `online` (published right after CONNACK) / `offline` (the CONNECT will) |
//! | `devices/{id}/state` | up | QoS 1, **retained** | state JSON, on connect, after every change, and every telemetry period |
//! | `devices/{id}/set` | down (device subscribes, QoS 1) | — | command JSON |
//! | `devices/{id}/reply` | up | QoS 1, not retained | reply JSON, one per command |
//!
//! `{id}` is `device_id` from the configuration: 1..=[`MAX_DEVICE_ID_LEN`] chars of
//! `[A-Za-z0-9_-]`.
//!
//! # State
//!
//! ```json
//! {"switches":{"Relay1":true,"LED":false},"uptime_s":12,"reconnects":0,"last_failure":null}
//! ```
//!
//! `switches` lists every switch in bank order; `last_failure` is a string or `null`.
//!
//! # Commands
//!
//! One switch: `{"id":"42","switch":"Relay1","on":true}`.
//! Several at once: `{"id":"43","switches":{"Relay1":true,"LED":false}}`.
//!
//! `on` values may be `true`, `false`, `1` or `0`. `id` is optional: a string of 1..=32 chars of
//! `[A-Za-z0-9_.:-]` or a non-negative integer, echoed in the reply (as a string). Other members
//! are ignored. All switches of a command are checked before any output changes; a refused
//! command changes nothing.
//!
//! # Replies
//!
//! `{"id":"42","ok":true}` or `{"id":"42","ok":false,"error":"unknown_switch"}`. When the command
//! has no usable id (absent, wrong type, or the payload is not JSON) the reply carries
//! `"id":null`. Error strings (stable, see [`error_str`]):
//!
//! | error | meaning |
//! |---|---|
//! | `malformed_json` | not a JSON object, bad syntax, nesting deeper than 4, more than 16 members |
//! | `missing_field` | neither `switch`+`on` nor a non-empty `switches`; or `switch` without `on` |
//! | `unknown_switch` | no switch has that name |
//! | `bad_value` | `on` (or a `switches` value) is not true/false/0/1, or `switch` is not a string |
//! | `duplicate_switch` | a switch named twice in `switches` |
//! | `conflicting_fields` | both `switch` and `switches` given |
//! | `output_failed` | the command was valid but an output failed (switches before it did change; the new state follows) |

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Serialize as DeriveSerialize;

use crate::json::{self, Scalar};
use crate::switch::{
    apply_validated, switch_value, validate_changes, Changes, CommandError, SwitchBank,
    SwitchOutputs, Telemetry,
};

/// Longest device id.
pub const MAX_DEVICE_ID_LEN: usize = 64;
/// Longest command id echoed in a reply.
pub const MAX_COMMAND_ID_LEN: usize = 32;
/// Most members accepted in one object of a command.
pub const MAX_MEMBERS: usize = 16;
/// Reply buffers must be at least this long (checked before anything changes).
pub const REPLY_CAPACITY: usize = 96;
/// Capacity of a topic string.
pub const TOPIC_CAPACITY: usize = MAX_DEVICE_ID_LEN + 16;
/// A topic string.
pub type Topic = heapless::String<TOPIC_CAPACITY>;

/// Status payload published (retained) after connecting.
pub const STATUS_ONLINE: &[u8] = b"online";
/// Status payload of the will (retained).
pub const STATUS_OFFLINE: &[u8] = b"offline";

/// The device id is not usable in topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidDeviceId;

/// Whether `id` is a valid device id: 1..=[`MAX_DEVICE_ID_LEN`] chars of `[A-Za-z0-9_-]`.
pub fn is_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DEVICE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The topics of device `{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTopics<'a> {
    id: &'a str,
}

impl<'a> DeviceTopics<'a> {
    /// Topics for device `id`.
    pub fn new(id: &'a str) -> Result<Self, InvalidDeviceId> {
        if is_device_id(id) {
            Ok(DeviceTopics { id })
        } else {
            Err(InvalidDeviceId)
        }
    }

    fn topic(&self, leaf: &str) -> Topic {
        let mut t = Topic::new();
        for part in ["devices/", self.id, "/", leaf] {
            // Cannot fail: id length is bounded by MAX_DEVICE_ID_LEN.
            if t.push_str(part).is_err() {
                break;
            }
        }
        t
    }

    /// `devices/{id}/state` (retained).
    pub fn state(&self) -> Topic {
        self.topic("state")
    }

    /// `devices/{id}/set` (subscribe).
    pub fn set(&self) -> Topic {
        self.topic("set")
    }

    /// `devices/{id}/reply`.
    pub fn reply(&self) -> Topic {
        self.topic("reply")
    }

    /// `devices/{id}/status` (retained; `online`, and `offline` as the will).
    pub fn status(&self) -> Topic {
        self.topic("status")
    }
}

pub use crate::json::BufferTooSmall;

struct Switches<'b, 'a, const N: usize>(&'b SwitchBank<'a, N>);

impl<const N: usize> Serialize for Switches<'_, '_, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (name, on) in self.0.iter() {
            map.serialize_entry(name, &on)?;
        }
        map.end()
    }
}

#[derive(DeriveSerialize)]
struct State<'b, 'a, const N: usize> {
    switches: Switches<'b, 'a, N>,
    uptime_s: u32,
    reconnects: u32,
    last_failure: Option<&'static str>,
}

/// Writes the state JSON into `out`; returns its length.
pub fn write_state<const N: usize>(
    bank: &SwitchBank<'_, N>,
    telemetry: &Telemetry,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    serde_json_core::to_slice(
        &State {
            switches: Switches(bank),
            uptime_s: telemetry.uptime_s,
            reconnects: telemetry.reconnects,
            last_failure: telemetry.last_failure,
        },
        out,
    )
    .map_err(|_| BufferTooSmall)
}

/// The stable error string of a command error (see the module docs).
pub fn error_str(error: CommandError) -> &'static str {
    match error {
        CommandError::MalformedJson => "malformed_json",
        CommandError::MissingField => "missing_field",
        CommandError::UnknownSwitch => "unknown_switch",
        CommandError::WrongType => "bad_value",
        CommandError::DuplicateSwitch => "duplicate_switch",
        CommandError::Conflict => "conflicting_fields",
        // Not produced by this profile (there is one command); kept distinct for completeness.
        CommandError::UnknownCommand => "unknown_command",
        CommandError::Output(_) => "output_failed",
    }
}

/// Result of handling a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// Length of the reply at the start of the output buffer; publish it on `devices/{id}/reply`.
    pub reply_len: usize,
    /// A switch changed: publish the state now.
    pub report_state: bool,
    /// Why the command was refused or failed, if it was.
    pub error: Option<CommandError>,
}

#[derive(DeriveSerialize)]
struct Reply<'a> {
    id: Option<&'a str>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

fn command_id(value: Option<Scalar<'_>>) -> Option<heapless::String<MAX_COMMAND_ID_LEN>> {
    let mut id = heapless::String::new();
    match value? {
        Scalar::Str(s) if json::is_safe_id(s, MAX_COMMAND_ID_LEN) => id.push_str(s).ok()?,
        Scalar::UInt(n) => json::push_decimal(&mut id, n).ok()?,
        _ => return None,
    }
    Some(id)
}

fn validate<const N: usize>(
    obj: &json::Object<'_, MAX_MEMBERS>,
    bank: &SwitchBank<'_, N>,
) -> Result<Changes<N>, CommandError> {
    match (obj.get("switch"), obj.get("switches")) {
        (Some(_), Some(_)) => Err(CommandError::Conflict),
        (None, None) => Err(CommandError::MissingField),
        (None, Some(_)) => match obj.nested() {
            Some(members) => validate_changes(bank, members),
            None => Err(CommandError::WrongType),
        },
        (Some(name), None) => {
            let Scalar::Str(name) = name else {
                return Err(CommandError::WrongType);
            };
            let index = bank.index_of(name).ok_or(CommandError::UnknownSwitch)?;
            let on = switch_value(obj.get("on").ok_or(CommandError::MissingField)?)?;
            let mut changes = Changes::new();
            changes
                .push((index, on))
                .map_err(|_| CommandError::UnknownSwitch)?;
            Ok(changes)
        }
    }
}

/// Handles a command from `devices/{id}/set`: validates it completely, drives the outputs, and
/// writes the reply into `out` (at least [`REPLY_CAPACITY`] bytes, checked first).
pub fn handle_command<const N: usize, O: SwitchOutputs + ?Sized>(
    payload: &[u8],
    bank: &mut SwitchBank<'_, N>,
    outputs: &mut O,
    out: &mut [u8],
) -> Result<Handled, BufferTooSmall> {
    if out.len() < REPLY_CAPACITY {
        return Err(BufferTooSmall);
    }
    let mut obj = json::Object::<MAX_MEMBERS>::new();
    let (id, validated) = match json::parse_object_into(payload, Some("switches"), &mut obj) {
        Err(_) => (None, Err(CommandError::MalformedJson)),
        Ok(()) => (command_id(obj.get("id")), validate(&obj, bank)),
    };
    let (report_state, result) = apply_validated(bank, validated, outputs);
    let error = result.err();
    let reply = Reply {
        id: id.as_deref(),
        ok: error.is_none(),
        error: error.map(error_str),
    };
    let reply_len = serde_json_core::to_slice(&reply, out).map_err(|_| BufferTooSmall)?;
    Ok(Handled {
        reply_len,
        report_state,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::testing::Recorder;
    use crate::switch::OutputError;
    use std::string::String;

    fn bank() -> SwitchBank<'static, 2> {
        SwitchBank::new(["Relay1", "LED"]).unwrap()
    }

    fn command(
        payload: &str,
        bank: &mut SwitchBank<'static, 2>,
        out: &mut Recorder,
    ) -> (Handled, String) {
        let mut buf = [0u8; 96];
        let h = handle_command(payload.as_bytes(), bank, out, &mut buf).unwrap();
        (h, String::from_utf8(buf[..h.reply_len].to_vec()).unwrap())
    }

    #[test]
    fn topics() {
        let t = DeviceTopics::new("board-7").unwrap();
        assert_eq!(t.state(), "devices/board-7/state");
        assert_eq!(t.set(), "devices/board-7/set");
        assert_eq!(t.reply(), "devices/board-7/reply");
        assert_eq!(t.status(), "devices/board-7/status");
        assert_eq!(DeviceTopics::new("a/b"), Err(InvalidDeviceId));
        assert_eq!(DeviceTopics::new("#"), Err(InvalidDeviceId));
        assert_eq!(DeviceTopics::new(""), Err(InvalidDeviceId));
        let long = "x".repeat(MAX_DEVICE_ID_LEN);
        assert_eq!(DeviceTopics::new(&long).unwrap().status().len(), 8 + 64 + 7);
    }

    #[test]
    fn state_exact() {
        let mut b = bank();
        b.apply("Relay1", true, &mut Recorder::default()).unwrap();
        let mut buf = [0u8; 160];
        let n = write_state(
            &b,
            &Telemetry {
                uptime_s: 12,
                reconnects: 0,
                last_failure: None,
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            &buf[..n],
            br#"{"switches":{"Relay1":true,"LED":false},"uptime_s":12,"reconnects":0,"last_failure":null}"#
        );
        let t = Telemetry {
            uptime_s: 4_000_000_000,
            reconnects: 2,
            last_failure: Some("dns"),
        };
        let n = write_state(&b, &t, &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            br#"{"switches":{"Relay1":true,"LED":false},"uptime_s":4000000000,"reconnects":2,"last_failure":"dns"}"#
        );
        assert_eq!(write_state(&b, &t, &mut buf[..20]), Err(BufferTooSmall));
    }

    #[test]
    fn single_and_multi_commands() {
        let mut b = bank();
        let mut out = Recorder::default();
        let (h, reply) = command(
            r#"{"id":"42","switch":"Relay1","on":true}"#,
            &mut b,
            &mut out,
        );
        assert_eq!(reply, r#"{"id":"42","ok":true}"#);
        assert!(h.report_state);
        assert_eq!(b.states(), &[true, false]);
        let (_, reply) = command(
            r#"{"id":43,"switches":{"Relay1":0,"LED":true}}"#,
            &mut b,
            &mut out,
        );
        assert_eq!(reply, r#"{"id":"43","ok":true}"#);
        assert_eq!(b.states(), &[false, true]);
        let (_, reply) = command(r#"{"switch":"LED","on":false}"#, &mut b, &mut out);
        assert_eq!(reply, r#"{"id":null,"ok":true}"#);
        assert_eq!(out.calls, [(0, true), (0, false), (1, true), (1, false)]);
    }

    #[test]
    fn bad_commands_change_nothing() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"id":"1","switch":"Fan","on":true}"#,
                r#"{"id":"1","ok":false,"error":"unknown_switch"}"#,
            ),
            (
                r#"{"id":"2","switch":"LED","on":"yes"}"#,
                r#"{"id":"2","ok":false,"error":"bad_value"}"#,
            ),
            (
                r#"{"id":"3","switch":"LED","on":2}"#,
                r#"{"id":"3","ok":false,"error":"bad_value"}"#,
            ),
            (
                r#"{"id":"4","switch":true,"on":true}"#,
                r#"{"id":"4","ok":false,"error":"bad_value"}"#,
            ),
            (
                r#"{"id":"5","switch":"LED"}"#,
                r#"{"id":"5","ok":false,"error":"missing_field"}"#,
            ),
            (
                r#"{"id":"6"}"#,
                r#"{"id":"6","ok":false,"error":"missing_field"}"#,
            ),
            (
                r#"{"id":"7","switches":{}}"#,
                r#"{"id":"7","ok":false,"error":"missing_field"}"#,
            ),
            (
                r#"{"id":"8","switches":{"LED":1,"Fan":0}}"#,
                r#"{"id":"8","ok":false,"error":"unknown_switch"}"#,
            ),
            (
                r#"{"id":"9","switches":{"LED":1,"LED":0}}"#,
                r#"{"id":"9","ok":false,"error":"duplicate_switch"}"#,
            ),
            (
                r#"{"id":"10","switches":["LED"]}"#,
                r#"{"id":"10","ok":false,"error":"bad_value"}"#,
            ),
            (
                r#"{"id":"11","switch":"LED","on":true,"switches":{"LED":1}}"#,
                r#"{"id":"11","ok":false,"error":"conflicting_fields"}"#,
            ),
            (
                r#"{"id":"12","switch":"LED","on":true"#,
                r#"{"id":null,"ok":false,"error":"malformed_json"}"#,
            ),
            ("on", r#"{"id":null,"ok":false,"error":"malformed_json"}"#),
            (
                r#"{"id":"a\"b","switch":"Fan","on":true}"#,
                r#"{"id":null,"ok":false,"error":"unknown_switch"}"#,
            ),
        ];
        for &(payload, reply) in cases {
            let mut b = bank();
            let mut out = Recorder::default();
            let (h, got) = command(payload, &mut b, &mut out);
            assert_eq!(got, reply, "{payload}");
            assert!(h.error.is_some());
            assert!(!h.report_state);
            assert!(out.calls.is_empty(), "{payload}");
            assert_eq!(b.states(), &[false, false]);
        }
    }

    #[test]
    fn output_failure_reported() {
        let mut b = bank();
        let mut out = Recorder {
            fail_index: Some(0),
            ..Recorder::default()
        };
        let (h, reply) = command(
            r#"{"id":"1","switch":"Relay1","on":true}"#,
            &mut b,
            &mut out,
        );
        assert_eq!(reply, r#"{"id":"1","ok":false,"error":"output_failed"}"#);
        assert_eq!(h.error, Some(CommandError::Output(OutputError::Io)));
        assert!(!h.report_state);
        assert_eq!(b.states(), &[false, false]);
    }
}
