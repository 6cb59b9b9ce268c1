//! Service calls: `/sys/{pk}/{dn}/thing/service/{identifier}`, replied on
//! `/sys/{pk}/{dn}/thing/service/{identifier}_reply`.
//!
//! Implemented services:
//!
//! - [`SERVICE_TOGGLE`] (`Toggle`): input `{"name":"Relay1"}` (a switch name), inverts that
//!   switch. Request and reply:
//!
//!   ```json
//!   {"id":"200","version":"1.0","params":{"name":"Relay1"},"method":"thing.service.Toggle"}
//!   {"id":"200","code":200,"data":{"state":1}}
//!   ```
//!
//!   `state` is the new state (0/1). Errors: 460 for malformed JSON, missing `id`/`params`/`name`,
//!   `name` not a string, unknown switch; 500 if the output failed.
//!
//! Any other identifier gets `{"id":"…","code":404,"data":{}}` and changes nothing.

use serde::Serialize;

use super::{BufferTooSmall, Handled};
use crate::json::Scalar;
use crate::switch::{CommandError, SwitchBank, SwitchOutputs};

/// Identifier of the toggle service.
pub const SERVICE_TOGGLE: &str = "Toggle";

#[derive(Serialize)]
struct ToggleData {
    state: u8,
}

/// Handles a call of service `identifier` (from [`super::topics::Inbound::Service`]): validates,
/// acts, and writes the reply into `out` (at least [`REPLY_CAPACITY`](super::REPLY_CAPACITY) bytes, checked first).
pub fn handle_service<const N: usize, O: SwitchOutputs + ?Sized>(
    identifier: &str,
    payload: &[u8],
    bank: &mut SwitchBank<'_, N>,
    outputs: &mut O,
    out: &mut [u8],
) -> Result<Handled, BufferTooSmall> {
    let mut obj = crate::json::Object::new();
    let (id, parsed) = super::parse_request(payload, out, &mut obj)?;
    let result = parsed.and_then(|()| {
        if id.is_none() {
            Err(CommandError::MissingField)
        } else if identifier == SERVICE_TOGGLE {
            toggle(obj.nested(), bank, outputs)
        } else {
            Err(CommandError::UnknownCommand)
        }
    });
    let report_state = result.is_ok();
    super::reply(id.as_deref(), result, report_state, out)
}

fn toggle<const N: usize, O: SwitchOutputs + ?Sized>(
    params: Option<&[(&str, Scalar<'_>)]>,
    bank: &mut SwitchBank<'_, N>,
    outputs: &mut O,
) -> Result<ToggleData, CommandError> {
    let name = params
        .ok_or(CommandError::MissingField)?
        .iter()
        .find(|(k, _)| *k == "name")
        .ok_or(CommandError::MissingField)?
        .1;
    let Scalar::Str(name) = name else {
        return Err(CommandError::WrongType);
    };
    let index = bank.index_of(name).ok_or(CommandError::UnknownSwitch)?;
    let on = !bank.states().get(index).copied().unwrap_or(false);
    bank.apply_index(index, on, outputs)?;
    Ok(ToggleData {
        state: u8::from(on),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::testing::Recorder;
    use crate::switch::OutputError;
    use std::string::String;

    fn call(
        id: &str,
        payload: &str,
        bank: &mut SwitchBank<'static, 2>,
        out: &mut Recorder,
    ) -> (Handled, String) {
        let mut buf = [0u8; 128];
        let h = handle_service(id, payload.as_bytes(), bank, out, &mut buf).unwrap();
        (h, String::from_utf8(buf[..h.reply_len].to_vec()).unwrap())
    }

    #[test]
    fn toggle_flips() {
        let mut b = SwitchBank::new(["Relay1", "LED"]).unwrap();
        let mut out = Recorder::default();
        let req = r#"{"id":"200","version":"1.0","params":{"name":"Relay1"},"method":"thing.service.Toggle"}"#;
        let (h, reply) = call("Toggle", req, &mut b, &mut out);
        assert_eq!(reply, r#"{"id":"200","code":200,"data":{"state":1}}"#);
        assert!(h.report_state);
        let (_, reply) = call("Toggle", req, &mut b, &mut out);
        assert_eq!(reply, r#"{"id":"200","code":200,"data":{"state":0}}"#);
        assert_eq!(out.calls, [(0, true), (0, false)]);
    }

    #[test]
    fn bad_calls_change_nothing() {
        let cases: &[(&str, &str, &str, CommandError)] = &[
            (
                "Reboot",
                r#"{"id":"1","params":{}}"#,
                r#"{"id":"1","code":404,"data":{}}"#,
                CommandError::UnknownCommand,
            ),
            (
                "Toggle",
                r#"{"id":"2","params":{"name":"Fan"}}"#,
                r#"{"id":"2","code":460,"data":{}}"#,
                CommandError::UnknownSwitch,
            ),
            (
                "Toggle",
                r#"{"id":"3","params":{"name":1}}"#,
                r#"{"id":"3","code":460,"data":{}}"#,
                CommandError::WrongType,
            ),
            (
                "Toggle",
                r#"{"id":"4","params":{}}"#,
                r#"{"id":"4","code":460,"data":{}}"#,
                CommandError::MissingField,
            ),
            (
                "Toggle",
                r#"{"id":"5"}"#,
                r#"{"id":"5","code":460,"data":{}}"#,
                CommandError::MissingField,
            ),
            (
                "Toggle",
                r#"{"params":{"name":"LED"}}"#,
                r#"{"id":"0","code":460,"data":{}}"#,
                CommandError::MissingField,
            ),
            (
                "Toggle",
                r#"{"id":"6","params":"#,
                r#"{"id":"0","code":460,"data":{}}"#,
                CommandError::MalformedJson,
            ),
        ];
        for &(service, payload, reply, error) in cases {
            let mut b = SwitchBank::new(["Relay1", "LED"]).unwrap();
            let mut out = Recorder::default();
            let (h, got) = call(service, payload, &mut b, &mut out);
            assert_eq!(got, reply, "{payload}");
            assert_eq!(h.error, Some(error));
            assert!(!h.report_state);
            assert!(out.calls.is_empty());
            assert_eq!(b.states(), &[false, false]);
        }
    }

    #[test]
    fn toggle_output_failure() {
        let mut b = SwitchBank::new(["Relay1", "LED"]).unwrap();
        let mut out = Recorder {
            fail_index: Some(1),
            ..Recorder::default()
        };
        let (h, reply) = call(
            "Toggle",
            r#"{"id":"9","params":{"name":"LED"}}"#,
            &mut b,
            &mut out,
        );
        assert_eq!(reply, r#"{"id":"9","code":500,"data":{}}"#);
        assert_eq!(h.error, Some(CommandError::Output(OutputError::Io)));
        assert_eq!(b.state_of("LED"), Some(false));
    }
}
