//! `selfhosted`: `selfhosted::handle_command` on arbitrary payloads.
//!
//! Input: one context byte (bits 0-2: initial switch states; bits 3-4: failing output, 3 = none;
//! bit 7: reply buffer one byte too small), then the payload.
//!
//! Checks: no panic; the reply is a JSON object `{"id":…,"ok":…}` plus `"error"` exactly when
//! not ok, with `id` null or a safe string and `error` the stable string of the error; `ok` false
//! means nothing was driven and no state changed, except for `output_failed`, where exactly the
//! outputs before the failing one were driven and recorded; `ok` true means the driven outputs
//! are distinct, non-empty, and are what serde_json reads from the command.

use crate::alink::{bank_with, check_outputs, Recorder, SWITCHES};
use crate::input::{Input, Output};
use mqtts_core::selfhosted::{error_str, handle_command, MAX_COMMAND_ID_LEN, REPLY_CAPACITY};
use serde_json::Value;

/// The context byte (see the module docs).
pub fn context(states: u8, fail: u8, small_buffer: bool) -> u8 {
    (states & 0x07) | ((fail & 0x03) << 3) | if small_buffer { 0x80 } else { 0 }
}

/// A context byte followed by a payload.
pub fn encode(states: u8, fail: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Output::default();
    out.u8(context(states, fail, false));
    out.raw(payload);
    out.bytes
}

/// The target.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let ctx = input.u8();
    let payload = input.bytes(data.len());
    let small_buffer = ctx & 0x80 != 0;
    let mut bank = bank_with(ctx & 0x07);
    let before = *bank.states();
    let mut out = Recorder {
        fail: Some(usize::from((ctx >> 3) & 0x03)),
        ..Recorder::default()
    };
    let mut buf = vec![0u8; REPLY_CAPACITY - usize::from(small_buffer)];
    let Ok(h) = handle_command(payload, &mut bank, &mut out, &mut buf) else {
        assert!(small_buffer, "roomy buffer refused");
        assert!(
            out.attempts.is_empty(),
            "output driven before BufferTooSmall"
        );
        assert_eq!(bank.states(), &before);
        return;
    };
    assert!(!small_buffer, "short buffer accepted");
    check_outputs(&before, bank.states(), &out, h.error, h.report_state);

    let text = buf.get(..h.reply_len).expect("reply_len within the buffer");
    let reply: Value = serde_json::from_slice(text).unwrap_or_else(|e| {
        panic!(
            "reply is not JSON ({e}): {:?}",
            String::from_utf8_lossy(text)
        )
    });
    let obj = reply.as_object().expect("reply is an object");
    match &obj["id"] {
        Value::Null => {}
        Value::String(id) => assert!(
            !id.is_empty()
                && id.len() <= MAX_COMMAND_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)),
            "{reply}"
        ),
        other => panic!("id {other}"),
    }
    assert_eq!(obj["ok"].as_bool(), Some(h.error.is_none()), "{reply}");
    match h.error {
        Some(e) => {
            assert_eq!(obj.len(), 3, "{reply}");
            assert_eq!(obj["error"].as_str(), Some(error_str(e)), "{reply}");
        }
        None => {
            assert_eq!(obj.len(), 2, "{reply}");
            let mut seen = [false; 3];
            for &(i, _) in &out.calls {
                assert!(!seen[i], "switch {i} driven twice: {:?}", out.calls);
                seen[i] = true;
            }
            agrees_with_serde_json(payload, &out.calls);
        }
    }
}

fn switch_value(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) if n.as_u64() == Some(0) => false,
        Value::Number(n) if n.as_u64() == Some(1) => true,
        _ => panic!("accepted value {v}"),
    }
}

fn index(name: &str) -> usize {
    SWITCHES
        .iter()
        .position(|s| *s == name)
        .unwrap_or_else(|| panic!("accepted unknown switch {name:?}"))
}

/// An accepted command, read by serde_json, names exactly the driven changes.
fn agrees_with_serde_json(payload: &[u8], calls: &[(usize, bool)]) {
    // The core compares raw (escaped) keys and may be more lenient than serde_json: compare
    // only escape-free payloads that serde_json accepts.
    if payload.contains(&b'\\') {
        return;
    }
    // Duplicate keys: the core reads the first, serde_json keeps the last.
    let raw = String::from_utf8_lossy(payload);
    if raw.matches("\"on\"").count() > 1 || raw.matches("\"switch\"").count() > 1 {
        return;
    }
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(payload) else {
        return;
    };
    let mut want: Vec<(usize, bool)> = match (obj.get("switch"), obj.get("switches")) {
        (Some(Value::String(name)), None) => {
            vec![(index(name), switch_value(obj.get("on").expect("on")))]
        }
        (None, Some(Value::Object(map))) => map
            .iter()
            .map(|(k, v)| (index(k), switch_value(v)))
            .collect(),
        _ => panic!("accepted command {obj:?}"),
    };
    let mut got = calls.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}
