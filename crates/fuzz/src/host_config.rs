//! `host_config`: the host runner's TOML configuration (`mqtts_sim::host_config::HostConfig`).
//!
//! Input: a mode byte. Even: the rest is the file (lossy UTF-8). Odd: a structured file, one
//! selector byte per option of [`KEYS`] (bit 0 present, bits 1-3 value kind, bits 4-5 key
//! quoting: bare, `"k"`, `'k'`, escaped) and its value bytes, so that whole valid files, and
//! files with one bad option, are common; the bytes left after the options are appended as raw
//! text.
//!
//! On the text: `parse`; when it succeeds, `Debug`, `device_config`, `switch_names`, `check`
//! (with `insecure`, so no file is read; without it only when there is no `ca_file`) and
//! `transport_options`.
//!
//! Checks: no panic; no error text (nor the `Debug` of a parsed file) shows the value of
//! `password` or `aliyun_device_secret`. A secret value of 6+ characters that occurs once in the
//! text is "shown" when a message contains it but the messages of the same text with that value
//! changed (letters and digits rotated, so the TOML keeps its shape) do not: then the message
//! depends on the secret.

use crate::input::{Input, Output};
use mqtts_sim::host_config::{HostConfig, SECRET_KEYS};

/// Every option, in the order the structured mode writes them.
pub const KEYS: [&str; 24] = [
    "profile",
    "broker_host",
    "broker_port",
    "tls",
    "tls_peer_verify",
    "client_id",
    "aliyun_product_key",
    "aliyun_device_name",
    "aliyun_device_secret",
    "aliyun_sign_method",
    "username",
    "password",
    "device_id",
    "keepalive_s",
    "ping_timeout_ms",
    "connect_timeout_ms",
    "inflight_max",
    "backoff_min_ms",
    "backoff_max_ms",
    "telemetry_period_s",
    "clean_session",
    "ca_file",
    "tls_server_name",
    "switches",
];

/// Integers around the options' limits.
const INTS: [i64; 20] = [
    0,
    1,
    2,
    8,
    29,
    30,
    60,
    100,
    1000,
    1200,
    1201,
    60_000,
    65_535,
    65_536,
    -1,
    4_294_967_295,
    4_294_967_296,
    i64::MAX,
    i64::MIN,
    120_000,
];

/// Plausible values of the text options.
fn dictionary(key: &str) -> &'static [&'static str] {
    match key {
        "profile" => &["aliyun", "self-hosted", "cloud", ""],
        "broker_host" => &[
            "localhost",
            "iot-06z00example.mqtt.iothub.aliyuncs.com",
            "",
            "a b",
        ],
        "client_id" => &["c1", "", "a|b", "pk.device"],
        "aliyun_product_key" => &["a1B2c3D4e5F", "pk", "p&k", ""],
        "aliyun_device_name" => &["relay-board-1", "dn", "d|n", ""],
        "aliyun_sign_method" => &["hmacsha256", "hmacsha1", "hmacmd5", "sha3"],
        "username" => &["board-1", "dev", "", "u\u{e9}"],
        "device_id" => &["board-1", "d1", "a/b", ""],
        "ca_file" => &["/nonexistent/ca.pem", "", "certs/ca.pem"],
        "tls_server_name" => &["localhost", "127.0.0.1", "bad name!", ""],
        "switches" => &["Relay1", "LED", "Relay 2", "", "A"],
        _ => &["x"],
    }
}

fn is_int(key: &str) -> bool {
    key == "broker_port" || key.ends_with("_s") || key.ends_with("_ms") || key == "inflight_max"
}

fn is_bool(key: &str) -> bool {
    matches!(key, "tls" | "tls_peer_verify" | "clean_session")
}

/// A TOML basic string.
pub fn basic(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn fuzz_str(input: &mut Input<'_>) -> String {
    String::from_utf8_lossy(input.short_bytes()).into_owned()
}

/// Renders one option (or nothing); returns the line and the secret text, if it is a secret.
fn render(key: &str, input: &mut Input<'_>) -> (String, Option<String>) {
    let sel = input.u8();
    if sel & 1 == 0 {
        return (String::new(), None);
    }
    let kind = (sel >> 1) & 7;
    let quoted = match (sel >> 4) & 3 {
        0 => key.to_string(),
        1 => format!("\"{key}\""),
        2 => format!("'{key}'"),
        // An escaped first character: `"\u0070assword"` is `password`.
        _ => format!("\"\\u{:04X}{}\"", u32::from(key.as_bytes()[0]), &key[1..]),
    };
    let secret = SECRET_KEYS.contains(&key);
    let (value, shown): (String, Option<String>) = if secret {
        match kind {
            0..=2 => {
                let s = fuzz_str(input);
                (basic(&s), Some(s))
            }
            3 => {
                let s: String = fuzz_str(input)
                    .chars()
                    .filter(|c| *c != '\'' && !c.is_control())
                    .collect();
                (format!("'{s}'"), Some(s))
            }
            4 => {
                let s = fuzz_str(input);
                let body = basic(&s);
                (format!("\"\"{body}\"\""), Some(s))
            }
            5 => {
                let n = input.u32();
                (n.to_string(), Some(n.to_string()))
            }
            6 => {
                let s = fuzz_str(input);
                (format!("[{}, 1]", basic(&s)), Some(s))
            }
            _ => {
                let s = fuzz_str(input);
                (s.clone(), Some(s.trim().to_string()))
            }
        }
    } else {
        let v = match kind {
            0..=2 if is_int(key) => {
                let i = usize::from(input.u8());
                INTS.get(i)
                    .copied()
                    .unwrap_or_else(|| i64::from(input.u32() as i32))
                    .to_string()
            }
            0..=2 if is_bool(key) => (input.u8() & 1 == 1).to_string(),
            0..=2 if key == "switches" || key == "ca_file" => {
                let dict = dictionary(key);
                let n = input.u8();
                if key == "ca_file" && n & 0x80 == 0 {
                    basic(dict[usize::from(n) % dict.len()])
                } else {
                    let items: Vec<String> = (0..(n & 0x0f))
                        .map(|_| basic(dict[usize::from(input.u8()) % dict.len()]))
                        .collect();
                    format!("[{}]", items.join(", "))
                }
            }
            0..=2 => {
                let dict = dictionary(key);
                basic(dict[usize::from(input.u8()) % dict.len()])
            }
            3 => basic(&fuzz_str(input)),
            4 => {
                let hi = u64::from(input.u32());
                (((hi << 32) | u64::from(input.u32())) as i64).to_string()
            }
            5 => (input.u8() & 1 == 1).to_string(),
            6 => {
                let n = input.u8() % 10;
                let items: Vec<String> = (0..n).map(|_| basic(&fuzz_str(input))).collect();
                format!("[{}]", items.join(","))
            }
            _ => fuzz_str(input),
        };
        (v, None)
    };
    // A secret is looked for in the messages only when the file spells it literally: an escaped
    // value (`"\u0010…"`) decodes to text that may occur elsewhere in the file for real.
    let shown = shown.filter(|v| value.contains(v.as_str()));
    (format!("{quoted} = {value}\n"), shown)
}

/// The file and the secret values it holds (structured mode only; raw mode finds them in
/// [`secret_values`]).
pub fn text_of(data: &[u8]) -> (String, Vec<String>) {
    let mut input = Input::new(data);
    let mode = input.u8();
    if mode & 1 == 0 {
        return (
            String::from_utf8_lossy(input.bytes(data.len())).into_owned(),
            Vec::new(),
        );
    }
    let mut text = String::new();
    let mut secrets = Vec::new();
    for key in KEYS {
        let (line, secret) = render(key, &mut input);
        text.push_str(&line);
        secrets.extend(secret);
    }
    text.push_str(&String::from_utf8_lossy(input.bytes(data.len())));
    (text, secrets)
}

/// Writes a structured input: `fields` are `(key, selector, value bytes)`; keys not listed are
/// absent. `tail` is appended raw.
pub fn encode_structured(fields: &[(&str, u8, &[u8])], tail: &str) -> Vec<u8> {
    let mut out = Output::default();
    out.u8(1);
    for key in KEYS {
        match fields.iter().find(|(k, _, _)| *k == key) {
            Some((_, sel, value)) => {
                out.u8(sel | 1);
                out.raw(value);
            }
            None => out.u8(0),
        }
    }
    out.raw(tail.as_bytes());
    out.bytes
}

/// Writes a raw-text input.
pub fn encode_raw(text: &str) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(text.as_bytes());
    v
}

/// Values of secret keys as written on their lines: `password = VALUE`, key bare or quoted,
/// quotes around the value removed.
pub fn secret_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        if SECRET_KEYS.contains(&key) {
            let v = value
                .trim()
                .trim_matches(|c| c == '"' || c == '\'' || c == '[' || c == ']');
            out.push(v.to_string());
        }
    }
    out
}

/// Every text the configuration code shows for this file.
pub fn messages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut show = |e: mqtts_sim::host_config::ConfigReport| {
        out.push(e.to_string());
        out.push(format!("{e:?}"));
    };
    let config = match HostConfig::parse(text) {
        Ok(c) => c,
        Err(e) => {
            show(e);
            return out;
        }
    };
    let debug = format!("{config:?}");
    if let Err(e) = config.device_config() {
        show(e);
    }
    if let Err(e) = config.switch_names() {
        show(e);
    }
    if let Err(e) = config.check(true) {
        show(e);
    }
    // Without --insecure `check` reads the CA files: only when there are none.
    if config.ca_file.is_none() {
        if let Err(e) = config.check(false) {
            show(e);
        }
    }
    let _ = config.transport_options(false);
    out.push(debug);
    out
}

/// `s` with ASCII letters and digits rotated (digits stay non-zero-leading digits).
fn rotate(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='y' | 'A'..='Y' => char::from(c as u8 + 1),
            'z' => 'a',
            'Z' => 'A',
            '0'..='8' => char::from(c as u8 + 1),
            '9' => '1',
            c => c,
        })
        .collect()
}

/// The target.
pub fn run(data: &[u8]) {
    let (text, mut secrets) = text_of(data);
    secrets.extend(secret_values(&text));
    // What looks like a secret line may be inside another option's multi-line string: when the
    // file parses, only the values it really holds count.
    if let Ok(config) = HostConfig::parse(&text) {
        secrets.retain(|v| {
            config.password.as_deref() == Some(v.as_str())
                || config.aliyun_device_secret.as_deref() == Some(v.as_str())
        });
    }
    let shown = messages(&text);
    for v in secrets {
        // Short values are too likely to be words of the messages themselves.
        if v.chars().count() < 6 || text.matches(v.as_str()).count() != 1 {
            continue;
        }
        let Some(leak) = shown.iter().find(|m| m.contains(v.as_str())) else {
            continue;
        };
        let other = text.replace(v.as_str(), &rotate(&v));
        if messages(&other).iter().all(|m| !m.contains(v.as_str())) {
            panic!("secret {v:?} shown in {leak:?}\n--- file:\n{text}");
        }
    }
}
