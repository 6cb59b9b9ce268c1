//! Property post (device → cloud) and property set (cloud → device).
//!
//! # Property post
//!
//! Topic `/sys/{pk}/{dn}/thing/event/property/post`:
//!
//! ```json
//! {"id":"7","version":"1.0","params":{"Relay1":1,"LED":0,"Uptime":12,"ReconnectCount":0,"LastFailure":"tls"},"method":"thing.event.property.post"}
//! ```
//!
//! Switches are `0`/`1` (Alink `bool` properties), in bank order, then the telemetry properties
//! [`PROP_UPTIME`], [`PROP_RECONNECTS`] and, only when there was a failure, [`PROP_LAST_FAILURE`].
//! These identifiers must exist in the product's thing model, and switch names must not reuse
//! them. Record the id in [`PendingPosts`]; the cloud answers on `…/post_reply`:
//!
//! ```json
//! {"code":200,"data":{},"id":"7","message":"success","method":"thing.event.property.post","version":"1.0"}
//! ```
//!
//! matched by [`match_post_reply`].
//!
//! # Property set
//!
//! Topic `/sys/{pk}/{dn}/thing/service/property/set`:
//!
//! ```json
//! {"method":"thing.service.property.set","id":"123","params":{"Relay1":1,"LED":true},"version":"1.0.0"}
//! ```
//!
//! Values `0`, `1`, `false`, `true` are accepted. All parameters are validated before any output
//! changes; one bad parameter refuses the whole command. The reply goes to `…/property/set_reply`:
//! `{"id":"123","code":200,"data":{}}`, or the error code of the module docs with empty data,
//! e.g. `{"id":"123","code":460,"data":{}}`.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::ids::{MessageId, PendingPosts};
use super::{write_json, BufferTooSmall, Empty, Handled, Request, MAX_MEMBERS};
use crate::json::{self, Scalar};
use crate::switch::{
    apply_validated, validate_changes, CommandError, SwitchBank, SwitchOutputs, Telemetry,
};

/// Thing-model identifier of the uptime property (seconds, int).
pub const PROP_UPTIME: &str = "Uptime";
/// Thing-model identifier of the reconnect-count property (int).
pub const PROP_RECONNECTS: &str = "ReconnectCount";
/// Thing-model identifier of the last-failure property (text); omitted while there is none.
pub const PROP_LAST_FAILURE: &str = "LastFailure";
/// Method of a property post.
pub const METHOD_PROPERTY_POST: &str = "thing.event.property.post";

struct PostParams<'b, 'a, const N: usize> {
    bank: &'b SwitchBank<'a, N>,
    telemetry: &'b Telemetry,
}

impl<const N: usize> Serialize for PostParams<'_, '_, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (name, on) in self.bank.iter() {
            map.serialize_entry(name, &u8::from(on))?;
        }
        map.serialize_entry(PROP_UPTIME, &self.telemetry.uptime_s)?;
        map.serialize_entry(PROP_RECONNECTS, &self.telemetry.reconnects)?;
        if let Some(failure) = self.telemetry.last_failure {
            map.serialize_entry(PROP_LAST_FAILURE, failure)?;
        }
        map.end()
    }
}

/// Writes a property post of all switch states and the telemetry into `out`; returns its length.
pub fn write_property_post<const N: usize>(
    id: MessageId,
    bank: &SwitchBank<'_, N>,
    telemetry: &Telemetry,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let id = id.to_str();
    write_json(
        &Request {
            id: &id,
            version: super::VERSION,
            params: PostParams { bank, telemetry },
            method: METHOD_PROPERTY_POST,
        },
        out,
    )
}

/// What a `post_reply` says about a pending post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostReply {
    /// Code 200: the post was accepted; the id is no longer pending.
    Acked(MessageId),
    /// Another code: the cloud refused the post (e.g. 6813 format error); no longer pending.
    Rejected {
        /// The post.
        id: MessageId,
        /// The code in the reply.
        code: u32,
    },
    /// The id is not pending (late duplicate, previous connection, or not ours).
    UnknownId,
}

/// A `post_reply` payload is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// Not a JSON object.
    MalformedJson,
    /// `id` or `code` is absent or not of the expected type.
    MissingField,
}

/// Matches a `…/property/post_reply` payload against the pending posts.
pub fn match_post_reply<const K: usize>(
    payload: &[u8],
    pending: &mut PendingPosts<K>,
) -> Result<PostReply, ReplyError> {
    let mut obj = json::Object::<MAX_MEMBERS>::new();
    json::parse_object_into(payload, None, &mut obj).map_err(|_| ReplyError::MalformedJson)?;
    let code = match obj.get("code") {
        Some(Scalar::UInt(c)) => u32::try_from(c).map_err(|_| ReplyError::MissingField)?,
        _ => return Err(ReplyError::MissingField),
    };
    let id = match obj.get("id") {
        Some(Scalar::Str(s)) => MessageId::parse(s),
        Some(Scalar::UInt(n)) => u32::try_from(n).ok().and_then(MessageId::new),
        _ => return Err(ReplyError::MissingField),
    };
    let Some(id) = id.filter(|id| pending.resolve(*id)) else {
        return Ok(PostReply::UnknownId);
    };
    Ok(if code == u32::from(super::code::OK) {
        PostReply::Acked(id)
    } else {
        PostReply::Rejected { id, code }
    })
}

/// Handles a property set payload: validates every parameter, then drives the outputs, then
/// writes the `set_reply` into `out` (at least [`REPLY_CAPACITY`](super::REPLY_CAPACITY) bytes, checked first).
pub fn handle_property_set<const N: usize, O: SwitchOutputs + ?Sized>(
    payload: &[u8],
    bank: &mut SwitchBank<'_, N>,
    outputs: &mut O,
    out: &mut [u8],
) -> Result<Handled, BufferTooSmall> {
    let mut obj = json::Object::new();
    let (id, parsed) = super::parse_request(payload, out, &mut obj)?;
    let validated = parsed.and_then(|()| match (&id, obj.get("params"), obj.nested()) {
        (None, _, _) | (_, None, _) => Err(CommandError::MissingField),
        (_, Some(_), None) => Err(CommandError::WrongType),
        (_, _, Some(params)) => validate_changes(bank, params),
    });
    let (report_state, result) = apply_validated(bank, validated, outputs);
    let result = result.map(|()| Empty {});
    super::reply(id.as_deref(), result, report_state, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::testing::Recorder;
    use crate::switch::OutputError;
    use std::vec;

    fn bank() -> SwitchBank<'static, 2> {
        SwitchBank::new(["Relay1", "LED"]).unwrap()
    }

    fn set(
        payload: &str,
        bank: &mut SwitchBank<'static, 2>,
        out: &mut Recorder,
    ) -> (Handled, std::string::String) {
        let mut buf = [0u8; 128];
        let h = handle_property_set(payload.as_bytes(), bank, out, &mut buf).unwrap();
        (
            h,
            std::string::String::from_utf8(buf[..h.reply_len].to_vec()).unwrap(),
        )
    }

    #[test]
    fn post_payload_exact() {
        let mut b = bank();
        b.apply("Relay1", true, &mut Recorder::default()).unwrap();
        let t = Telemetry {
            uptime_s: 12,
            reconnects: 3,
            last_failure: Some("tls \"x\""),
        };
        let mut buf = [0u8; 256];
        let n = write_property_post(MessageId::new(7).unwrap(), &b, &t, &mut buf).unwrap();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            r#"{"id":"7","version":"1.0","params":{"Relay1":1,"LED":0,"Uptime":12,"ReconnectCount":3,"LastFailure":"tls \"x\""},"method":"thing.event.property.post"}"#
        );
        let t = Telemetry::default();
        let n = write_property_post(MessageId::new(8).unwrap(), &b, &t, &mut buf).unwrap();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            r#"{"id":"8","version":"1.0","params":{"Relay1":1,"LED":0,"Uptime":0,"ReconnectCount":0},"method":"thing.event.property.post"}"#
        );
        assert_eq!(
            write_property_post(MessageId::new(8).unwrap(), &b, &t, &mut buf[..40]),
            Err(BufferTooSmall)
        );
    }

    #[test]
    fn post_reply_matching() {
        let mut p = PendingPosts::<4>::new();
        p.insert(MessageId::new(7).unwrap());
        p.insert(MessageId::new(8).unwrap());
        let ok = br#"{"code":200,"data":{},"id":"7","message":"success","method":"thing.event.property.post","version":"1.0"}"#;
        assert_eq!(
            match_post_reply(ok, &mut p),
            Ok(PostReply::Acked(MessageId::new(7).unwrap()))
        );
        assert_eq!(match_post_reply(ok, &mut p), Ok(PostReply::UnknownId));
        let bad = br#"{"code":6813,"data":{},"id":"8","message":"The format of result is error!","method":"thing.event.property.post","version":"1.0"}"#;
        assert_eq!(
            match_post_reply(bad, &mut p),
            Ok(PostReply::Rejected {
                id: MessageId::new(8).unwrap(),
                code: 6813
            })
        );
        assert!(p.is_empty());
        assert_eq!(
            match_post_reply(br#"{"code":200,"id":"0"}"#, &mut p),
            Ok(PostReply::UnknownId)
        );
        assert_eq!(
            match_post_reply(br#"{"code":200}"#, &mut p),
            Err(ReplyError::MissingField)
        );
        assert_eq!(
            match_post_reply(br#"{"code":"200","id":"1"}"#, &mut p),
            Err(ReplyError::MissingField)
        );
        assert_eq!(
            match_post_reply(br#"{"code":200,"id":"1""#, &mut p),
            Err(ReplyError::MalformedJson)
        );
    }

    #[test]
    fn set_applies_and_replies() {
        let mut b = bank();
        let mut out = Recorder::default();
        let (h, reply) = set(
            r#"{"method":"thing.service.property.set","id":"123","params":{"Relay1":1,"LED":true},"version":"1.0.0"}"#,
            &mut b,
            &mut out,
        );
        assert_eq!(reply, r#"{"id":"123","code":200,"data":{}}"#);
        assert_eq!(h.code, 200);
        assert!(h.report_state);
        assert_eq!(h.error, None);
        assert_eq!(b.states(), &[true, true]);
        assert_eq!(out.calls, vec![(0, true), (1, true)]);
        let (_, reply) = set(r#"{"id":"124","params":{"LED":0}}"#, &mut b, &mut out);
        assert_eq!(reply, r#"{"id":"124","code":200,"data":{}}"#);
        assert_eq!(b.states(), &[true, false]);
    }

    #[test]
    fn bad_sets_change_nothing() {
        let cases: &[(&str, &str, CommandError)] = &[
            (
                r#"{"id":"5","params":{"Relay1":1,"Fan":1}}"#,
                r#"{"id":"5","code":460,"data":{}}"#,
                CommandError::UnknownSwitch,
            ),
            (
                r#"{"id":"6","params":{"LED":1,"Relay1":"on"}}"#,
                r#"{"id":"6","code":460,"data":{}}"#,
                CommandError::WrongType,
            ),
            (
                r#"{"id":"7","params":{"Relay1":2}}"#,
                r#"{"id":"7","code":460,"data":{}}"#,
                CommandError::WrongType,
            ),
            (
                r#"{"id":"8","params":{"Relay1":1.0}}"#,
                r#"{"id":"8","code":460,"data":{}}"#,
                CommandError::WrongType,
            ),
            (
                r#"{"id":"9","params":{"Relay1":null}}"#,
                r#"{"id":"9","code":460,"data":{}}"#,
                CommandError::WrongType,
            ),
            (
                r#"{"id":"10","params":[1]}"#,
                r#"{"id":"10","code":460,"data":{}}"#,
                CommandError::WrongType,
            ),
            (
                r#"{"id":"11"}"#,
                r#"{"id":"11","code":460,"data":{}}"#,
                CommandError::MissingField,
            ),
            (
                r#"{"id":"12","params":{}}"#,
                r#"{"id":"12","code":460,"data":{}}"#,
                CommandError::MissingField,
            ),
            (
                r#"{"id":"13","params":{"LED":1,"LED":0}}"#,
                r#"{"id":"13","code":460,"data":{}}"#,
                CommandError::DuplicateSwitch,
            ),
            (
                r#"{"params":{"LED":1}}"#,
                r#"{"id":"0","code":460,"data":{}}"#,
                CommandError::MissingField,
            ),
            (
                r#"{"id":true,"params":{"LED":1}}"#,
                r#"{"id":"0","code":460,"data":{}}"#,
                CommandError::MissingField,
            ),
            (
                r#"{"id":"14","params":{"LED":1}"#,
                r#"{"id":"0","code":460,"data":{}}"#,
                CommandError::MalformedJson,
            ),
            (
                r#"{"id":"15","params":{"LED":tru}}"#,
                r#"{"id":"0","code":460,"data":{}}"#,
                CommandError::MalformedJson,
            ),
            (
                "",
                r#"{"id":"0","code":460,"data":{}}"#,
                CommandError::MalformedJson,
            ),
        ];
        for &(payload, reply, error) in cases {
            let mut b = bank();
            let mut out = Recorder::default();
            let (h, got) = set(payload, &mut b, &mut out);
            assert_eq!(got, reply, "{payload}");
            assert_eq!(h.error, Some(error), "{payload}");
            assert!(!h.report_state);
            assert_eq!(b.states(), &[false, false], "{payload}");
            assert!(out.calls.is_empty(), "{payload}");
        }
    }

    #[test]
    fn numeric_id_is_echoed_as_string() {
        let (_, reply) = set(
            r#"{"id":99,"params":{"LED":1}}"#,
            &mut bank(),
            &mut Recorder::default(),
        );
        assert_eq!(reply, r#"{"id":"99","code":200,"data":{}}"#);
    }

    #[test]
    fn output_failure_is_reported() {
        let mut b = bank();
        let mut out = Recorder {
            fail_index: Some(1),
            ..Recorder::default()
        };
        let (h, reply) = set(
            r#"{"id":"3","params":{"Relay1":1,"LED":1}}"#,
            &mut b,
            &mut out,
        );
        assert_eq!(reply, r#"{"id":"3","code":500,"data":{}}"#);
        assert_eq!(h.error, Some(CommandError::Output(OutputError::Io)));
        // Relay1 did switch before LED failed: the real state must be reported.
        assert!(h.report_state);
        assert_eq!(b.states(), &[true, false]);

        let mut b = bank();
        let (h, _) = set(r#"{"id":"4","params":{"LED":1}}"#, &mut b, &mut out);
        assert_eq!(h.code, 500);
        assert!(!h.report_state);
        assert_eq!(b.states(), &[false, false]);
    }

    #[test]
    fn small_buffer_refused_before_anything() {
        let mut b = bank();
        let mut out = Recorder::default();
        let mut buf = [0u8; 64];
        assert_eq!(
            handle_property_set(
                br#"{"id":"1","params":{"LED":1}}"#,
                &mut b,
                &mut out,
                &mut buf
            ),
            Err(BufferTooSmall)
        );
        assert!(out.calls.is_empty());
    }
}
