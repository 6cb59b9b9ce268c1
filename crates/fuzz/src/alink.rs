//! `alink`: the Alibaba Cloud command and reply parsers on arbitrary payloads.
//!
//! Input: a header (see [`Header`]), then the payload. One of four handlers runs:
//! `handle_property_set`, `handle_service`, `match_post_reply`, or `NtpResponse::parse` followed
//! by `utc_ms`.
//!
//! Checks: no panic; the reply is a JSON object `{"id":"…","code":…,"data":{…}}` with the code
//! the handler returned; a refused command drove no output and changed no state; an output
//! failure drove only the outputs before the failing one and recorded exactly those; a success
//! drove at least one output and the recorded states are the old ones with the driven outputs
//! applied; a too-small reply buffer changes nothing. `post_reply` resolves an id only if it was
//! pending; `utc_ms` agrees with the formula computed in 128-bit arithmetic.

use crate::input::{Input, Output};
use mqtts_core::alink::ids::{MessageId, PendingPosts};
use mqtts_core::alink::ntp::{NtpError, NtpResponse};
use mqtts_core::alink::property::{handle_property_set, match_post_reply, PostReply};
use mqtts_core::alink::service::handle_service;
use mqtts_core::alink::{code, error_code, Handled, REPLY_CAPACITY};
use mqtts_core::switch::{CommandError, OutputError, SwitchBank, SwitchOutputs};
use serde_json::Value;

/// The switches of the fuzzed device.
pub const SWITCHES: [&str; 3] = ["Relay1", "LED", "Heater_2"];
/// Pending posts table size.
pub const PENDING: usize = 4;

/// Records every successful `set` and fails on one index.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// Successful calls, in order.
    pub calls: Vec<(usize, bool)>,
    /// Every call, including the failed one.
    pub attempts: Vec<(usize, bool)>,
    /// The output that fails, if any.
    pub fail: Option<usize>,
}

impl SwitchOutputs for Recorder {
    fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError> {
        self.attempts.push((index, on));
        if self.fail == Some(index) {
            return Err(OutputError::Io);
        }
        self.calls.push((index, on));
        Ok(())
    }
}

/// Which handler runs, and its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// `handle_property_set`.
    PropertySet,
    /// `handle_service` with this identifier (empty input selects `Toggle`).
    Service(String),
    /// `match_post_reply` with these ids pending (0 is skipped: not a message id).
    PostReply(Vec<u32>),
    /// `NtpResponse::parse`, then `utc_ms(device_recv_ms)`.
    Ntp(u64),
}

/// Everything before the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The handler.
    pub handler: Handler,
    /// Initial switch states, bit i for switch i.
    pub states: u8,
    /// Failing output (values >= the number of switches: none).
    pub fail: u8,
    /// Use a reply buffer one byte too small.
    pub small_buffer: bool,
}

impl Header {
    /// Reads a header: selector byte, context byte, handler fields.
    pub fn read(input: &mut Input<'_>) -> Header {
        let sel = input.u8();
        let ctx = input.u8();
        let handler = match sel % 4 {
            0 => Handler::PropertySet,
            1 => Handler::Service(String::from_utf8_lossy(input.short_bytes()).into_owned()),
            2 => {
                let n = input.u8() % (PENDING as u8 + 2);
                Handler::PostReply((0..n).map(|_| input.u32()).collect())
            }
            _ => Handler::Ntp((u64::from(input.u32()) << 32) | u64::from(input.u32())),
        };
        Header {
            handler,
            states: ctx & 0x07,
            fail: (ctx >> 3) & 0x03,
            small_buffer: sel & 0x80 != 0,
        }
    }

    /// Writes the header so that [`Header::read`] gives it back.
    pub fn write(&self) -> Vec<u8> {
        let mut out = Output::default();
        let (tag, rest) = match &self.handler {
            Handler::PropertySet => (0, Output::default()),
            Handler::Service(id) => {
                let mut o = Output::default();
                o.short_bytes(id.as_bytes());
                (1, o)
            }
            Handler::PostReply(ids) => {
                let mut o = Output::default();
                o.u8(ids.len() as u8);
                for &id in ids {
                    o.u32(id);
                }
                (2, o)
            }
            Handler::Ntp(t) => {
                let mut o = Output::default();
                o.u32((t >> 32) as u32);
                o.u32(*t as u32);
                (3, o)
            }
        };
        out.u8(tag | if self.small_buffer { 0x80 } else { 0 });
        out.u8((self.states & 0x07) | ((self.fail & 0x03) << 3));
        out.raw(&rest.bytes);
        out.bytes
    }
}

/// A header followed by a payload.
pub fn encode(header: &Header, payload: &[u8]) -> Vec<u8> {
    let mut v = header.write();
    v.extend_from_slice(payload);
    v
}

/// A bank of [`SWITCHES`] with the states of `bits`, set without recording.
pub fn bank_with(bits: u8) -> SwitchBank<'static, 3> {
    let mut bank = SwitchBank::new(SWITCHES).expect("valid names");
    let mut sink = Recorder::default();
    for i in 0..SWITCHES.len() {
        bank.apply_index(i, bits & (1 << i) != 0, &mut sink)
            .expect("no failing output");
    }
    bank
}

/// The target.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let header = Header::read(&mut input);
    let payload = input.bytes(data.len());
    match &header.handler {
        Handler::PropertySet | Handler::Service(_) => command(&header, payload),
        Handler::PostReply(ids) => post_reply(ids, payload),
        Handler::Ntp(recv) => ntp(*recv, payload),
    }
}

fn command(header: &Header, payload: &[u8]) {
    let mut bank = bank_with(header.states);
    let before = *bank.states();
    let mut out = Recorder {
        fail: Some(usize::from(header.fail)),
        ..Recorder::default()
    };
    let len = if header.small_buffer {
        REPLY_CAPACITY - 1
    } else {
        REPLY_CAPACITY
    };
    let mut buf = vec![0u8; len];
    let service = match &header.handler {
        Handler::Service(id) if id.is_empty() => Some("Toggle"),
        Handler::Service(id) => Some(id.as_str()),
        _ => None,
    };
    let result = match service {
        Some(id) => handle_service(id, payload, &mut bank, &mut out, &mut buf),
        None => handle_property_set(payload, &mut bank, &mut out, &mut buf),
    };
    let Ok(h) = result else {
        assert!(header.small_buffer, "roomy buffer refused");
        assert!(
            out.attempts.is_empty(),
            "output driven before BufferTooSmall"
        );
        assert_eq!(bank.states(), &before);
        return;
    };
    assert!(!header.small_buffer, "short buffer accepted");
    check_outputs(&before, bank.states(), &out, h.error, h.report_state);
    let reply = check_reply(&buf, &h);
    if h.error.is_none() {
        if service.is_some() {
            // Toggle: one switch, inverted; the reply carries its new state.
            let &[(i, on)] = out.calls.as_slice() else {
                panic!("toggle drove {:?}", out.calls)
            };
            assert_eq!(on, !before[i]);
            assert_eq!(reply["data"], serde_json::json!({ "state": u8::from(on) }));
        } else {
            assert_eq!(reply["data"], serde_json::json!({}));
            let mut seen = [false; 3];
            for &(i, _) in &out.calls {
                assert!(!seen[i], "switch {i} driven twice: {:?}", out.calls);
                seen[i] = true;
            }
            set_agrees_with_serde_json(payload, &out.calls);
        }
    } else {
        assert_eq!(reply["data"], serde_json::json!({}));
    }
}

/// The shared output/state invariants of a command.
pub fn check_outputs(
    before: &[bool],
    after: &[bool],
    out: &Recorder,
    error: Option<CommandError>,
    report_state: bool,
) {
    // Whatever happened, the recorded states are the old ones plus the outputs that were driven.
    let mut expected = before.to_vec();
    for &(i, on) in &out.calls {
        expected[i] = on;
    }
    assert_eq!(after, expected.as_slice(), "states differ from the outputs");
    match error {
        None => {
            assert!(!out.calls.is_empty(), "success without driving an output");
            assert_eq!(out.calls, out.attempts);
            assert!(report_state);
        }
        Some(CommandError::Output(_)) => {
            let (last, done) = out.attempts.split_last().expect("a failing call");
            assert_eq!(Some(last.0), out.fail);
            assert_eq!(done, out.calls.as_slice());
            assert_eq!(report_state, !out.calls.is_empty());
        }
        Some(e) => {
            assert!(out.attempts.is_empty(), "refused ({e:?}) but drove outputs");
            assert_eq!(after, before);
            assert!(!report_state);
        }
    }
}

fn safe_id(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

fn check_reply(buf: &[u8], h: &Handled) -> Value {
    let text = buf.get(..h.reply_len).expect("reply_len within the buffer");
    let reply: Value = serde_json::from_slice(text).unwrap_or_else(|e| {
        panic!(
            "reply is not JSON ({e}): {:?}",
            String::from_utf8_lossy(text)
        )
    });
    let obj = reply.as_object().expect("reply is an object");
    assert_eq!(obj.len(), 3, "{reply}");
    let id = obj["id"].as_str().expect("id is a string");
    assert!(safe_id(id, mqtts_core::alink::MAX_ID_LEN), "{reply}");
    assert_eq!(obj["code"].as_u64(), Some(u64::from(h.code)), "{reply}");
    assert!(obj["data"].is_object(), "{reply}");
    match h.error {
        None => assert_eq!(h.code, code::OK),
        Some(e) => assert_eq!(h.code, error_code(e)),
    }
    reply
}

/// An accepted property set is a JSON object whose `params` are exactly the driven changes.
fn set_agrees_with_serde_json(payload: &[u8], calls: &[(usize, bool)]) {
    // The core may be more lenient than serde_json (e.g. raw control characters in strings);
    // compare only when both accept the payload. Keys are compared raw by the core and unescaped
    // by serde_json, so payloads with escapes are left out.
    if payload.contains(&b'\\') {
        return;
    }
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(payload) else {
        return;
    };
    let Some(Value::Object(params)) = obj.get("params") else {
        panic!("accepted set without a params object: {obj:?}");
    };
    let want: Vec<(usize, bool)> = params
        .iter()
        .map(|(k, v)| {
            let i = SWITCHES.iter().position(|s| s == k).expect("known switch");
            let on = match v {
                Value::Bool(b) => *b,
                Value::Number(n) if n.as_u64() == Some(0) => false,
                Value::Number(n) if n.as_u64() == Some(1) => true,
                _ => panic!("accepted value {v}"),
            };
            (i, on)
        })
        .collect();
    let mut got = calls.to_vec();
    let mut want = want;
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

fn post_reply(ids: &[u32], payload: &[u8]) {
    let mut pending = PendingPosts::<PENDING>::new();
    let mut model: Vec<u32> = Vec::new();
    for &id in ids {
        let Some(m) = MessageId::new(id) else {
            continue;
        };
        if let Some(evicted) = pending.insert(m) {
            let at = model
                .iter()
                .position(|&x| x == evicted.value())
                .expect("evicted id was pending");
            model.remove(at);
        }
        model.push(id);
    }
    assert_eq!(pending.len(), model.len());
    let before = pending.len();
    let result = match_post_reply(payload, &mut pending);
    match result {
        Ok(PostReply::Acked(id)) | Ok(PostReply::Rejected { id, .. }) => {
            assert!(model.contains(&id.value()), "resolved {id:?} not pending");
            assert_eq!(pending.len() + 1, before);
            // serde_json reads the same code (when it reads the payload and there is one "code").
            if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(payload) {
                let raw = String::from_utf8_lossy(payload);
                if !raw.contains('\\') && raw.matches("\"code\"").count() == 1 {
                    let acked = matches!(result, Ok(PostReply::Acked(_)));
                    assert_eq!(obj["code"].as_u64() == Some(200), acked, "{raw}");
                }
            }
        }
        Ok(PostReply::UnknownId) | Err(_) => assert_eq!(pending.len(), before),
    }
}

fn ntp(recv: u64, payload: &[u8]) {
    let Ok(r) = NtpResponse::parse(payload) else {
        return;
    };
    // The given time, and times that make the response consistent or just not.
    let rtt = r.server_send_ms.saturating_sub(r.server_recv_ms);
    for t in [
        recv,
        r.device_send_ms,
        r.device_send_ms.saturating_add(rtt),
        r.device_send_ms.saturating_add(rtt).saturating_sub(1),
        u64::MAX,
    ] {
        let got = r.utc_ms(t);
        let (ds, sr, ss, t) = (
            u128::from(r.device_send_ms),
            u128::from(r.server_recv_ms),
            u128::from(r.server_send_ms),
            u128::from(t),
        );
        if t < ds || ss < sr || ss - sr > t - ds {
            assert_eq!(got, Err(NtpError::Inconsistent), "{r:?} at {t}");
            continue;
        }
        let sum = sr + ss + (t - ds);
        if sum > u128::from(u64::MAX) {
            assert_eq!(got, Err(NtpError::Overflow), "{r:?} at {t}");
        } else {
            assert_eq!(got, Ok((sum / 2) as u64), "{r:?} at {t}");
        }
    }
}
