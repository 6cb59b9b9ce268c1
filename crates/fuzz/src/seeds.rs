//! The seed corpora: real MQTT packets from the 3.1.1 spec layouts, and scripts that walk the
//! session through its flows. `corpus/<target>/seed-<name>` holds them; the tests below fail when
//! the files and this list differ, and rewrite them with `MQTTS_WRITE_SEEDS=1 cargo test`.

use crate::alink::{Handler, Header};
use crate::ring::{self, Op};
use crate::session::{self, BrokerPacket as B, IdRef, Step as S};
use crate::sign::Case;

/// One seed file.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Fuzz target.
    pub target: &'static str,
    /// File name without the `seed-` prefix.
    pub name: &'static str,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// `decode` seeds that are not valid packets (the test checks they fail to decode).
pub const MALFORMED: [&str; 2] = ["remaining-length-5-bytes", "connack-reserved-flags"];

fn seed(target: &'static str, name: &'static str, bytes: Vec<u8>) -> Seed {
    Seed {
        target,
        name,
        bytes,
    }
}

/// CONNECT with every field: 31 bytes of variable header and payload.
#[rustfmt::skip]
const CONNECT_FULL: [u8; 33] = [
    0x10, 31,
    0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04,
    0xee, // user, password, will retain, will QoS 1, will, clean session
    0x00, 0x3c,
    0x00, 0x03, b'd', b'e', b'v',
    0x00, 0x03, b'l', b'w', b't',
    0x00, 0x03, b'b', b'y', b'e',
    0x00, 0x01, b'u',
    0x00, 0x01, b'p',
];

/// CONNECT with clean session, keepalive 0 and an empty client id.
#[rustfmt::skip]
const CONNECT_MINIMAL: [u8; 14] = [
    0x10, 12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x00,
];

/// Hand-assembled packets, field by field as in MQTT 3.1.1 chapter 3.
pub fn decode_seeds() -> Vec<Seed> {
    let mut publish_128 = vec![0x30, 0x80, 0x01, 0x00, 0x01, b'a'];
    publish_128.extend(std::iter::repeat_n(b'x', 125));
    let d = |name, bytes: &[u8]| seed("decode", name, bytes.to_vec());
    vec![
        d("connack", &[0x20, 0x02, 0x00, 0x00]),
        d("connack-session-present", &[0x20, 0x02, 0x01, 0x00]),
        d("connack-not-authorized", &[0x20, 0x02, 0x00, 0x05]),
        d("connack-reserved-flags", &[0x20, 0x02, 0x02, 0x00]),
        d("connect-will-user-password", &CONNECT_FULL),
        d("connect-minimal", &CONNECT_MINIMAL),
        d("publish-qos0", b"\x30\x0a\x00\x03a/bhello"),
        d("publish-qos1", b"\x32\x0c\x00\x03a/b\x00\x01hello"),
        d(
            "publish-qos2-dup-retain",
            b"\x3d\x0c\x00\x03a/b\x00\x02hello",
        ),
        d("publish-empty-payload", b"\x30\x03\x00\x01a"),
        d("publish-2-byte-length", &publish_128),
        // Remaining length 5 spelled in four bytes: a 5-byte fixed header.
        d("publish-4-byte-length", b"\x30\x85\x80\x80\x00\x00\x01ahi"),
        d(
            "remaining-length-5-bytes",
            &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        d("puback", &[0x40, 0x02, 0x00, 0x01]),
        d("pubrec", &[0x50, 0x02, 0x00, 0x02]),
        d("pubrel", &[0x62, 0x02, 0x00, 0x02]),
        d("pubcomp", &[0x70, 0x02, 0x00, 0x02]),
        d(
            "subscribe",
            b"\x82\x0e\x00\x01\x00\x03a/+\x01\x00\x03b/#\x00",
        ),
        d("suback-with-failure", &[0x90, 0x04, 0x00, 0x01, 0x01, 0x80]),
        d("unsubscribe", b"\xa2\x07\x00\x01\x00\x03a/b"),
        d("unsuback", &[0xb0, 0x02, 0x00, 0x01]),
        d("pingreq", &[0xc0, 0x00]),
        d("pingresp", &[0xd0, 0x00]),
        d("disconnect", &[0xe0, 0x00]),
        d(
            "pingresp-then-connack",
            &[0xd0, 0x00, 0x20, 0x02, 0x00, 0x00],
        ),
    ]
}

fn connect(clean: bool) -> S {
    S::Connect {
        flags: u8::from(clean),
        keep_alive: 60,
    }
}

fn connack(session_present: bool) -> [S; 2] {
    [
        S::Broker(B::ConnAck {
            session_present,
            code: 0,
        }),
        S::Receive(64),
    ]
}

const SEND_ALL: S = S::Send(u16::MAX);

fn publish(qos: u8, payload_len: u8) -> S {
    S::Publish {
        qos,
        topic: 1,
        payload_len,
        retain: false,
    }
}

/// Session scripts, one per flow.
pub fn session_seeds() -> Vec<Seed> {
    let s = |name, config: u8, steps: Vec<S>| {
        seed("session", name, session::encode_script(config, &steps))
    };
    let online = |clean| {
        let mut v = vec![connect(clean), SEND_ALL];
        v.extend(connack(false));
        v
    };
    let with = |mut a: Vec<S>, b: Vec<S>| {
        a.extend(b);
        a
    };
    vec![
        s(
            "qos1-publish-puback",
            0,
            with(
                online(true),
                vec![
                    publish(1, 10),
                    SEND_ALL,
                    S::Broker(B::PubAck(IdRef::Known(0))),
                    S::Receive(64),
                ],
            ),
        ),
        s(
            "qos2-publish-pubrec-pubcomp",
            0,
            with(
                online(true),
                vec![
                    publish(2, 20),
                    SEND_ALL,
                    S::Broker(B::PubRec(IdRef::Known(0))),
                    S::Receive(64),
                    SEND_ALL,
                    S::Broker(B::PubComp(IdRef::Known(0))),
                    S::Receive(64),
                ],
            ),
        ),
        s(
            "connack-split-subscribe-incoming",
            0,
            vec![
                connect(true),
                SEND_ALL,
                S::Wire(vec![0x20, 0x02, 0x00, 0x00]),
                S::Receive(1),
                S::Receive(1),
                S::Receive(2),
                S::Subscribe {
                    count: 2,
                    first: 1,
                    qos: 1,
                },
                SEND_ALL,
                // Codes 1 then 0x80.
                S::Broker(B::SubAck {
                    id: IdRef::Known(0),
                    count: 0,
                    codes: 0b1101,
                }),
                S::Receive(64),
                S::Broker(B::Publish {
                    qos: 1,
                    dup: false,
                    retain: false,
                    topic: 1,
                    id: IdRef::Raw(9),
                    payload_len: 5,
                }),
                S::Broker(B::Publish {
                    qos: 2,
                    dup: false,
                    retain: true,
                    topic: 2,
                    id: IdRef::Raw(7),
                    payload_len: 3,
                }),
                S::Receive(100),
                SEND_ALL,
                S::Broker(B::PubRel(IdRef::Raw(7))),
                S::Receive(64),
                SEND_ALL,
                S::Unsubscribe { count: 1, first: 1 },
                SEND_ALL,
                S::Broker(B::UnsubAck(IdRef::Known(0))),
                S::Receive(64),
            ],
        ),
        s(
            "keepalive-ping-and-timeout",
            8,
            vec![
                S::Connect {
                    flags: 1,
                    keep_alive: 1,
                },
                SEND_ALL,
                S::Broker(B::ConnAck {
                    session_present: false,
                    code: 0,
                }),
                S::Receive(64),
                S::Advance(1_000),
                SEND_ALL,
                S::Broker(B::PingResp),
                S::Receive(64),
                S::Advance(1_000),
                SEND_ALL,
                S::Advance(400),
            ],
        ),
        s(
            "reconnect-resends-with-dup",
            1,
            with(
                online(false),
                vec![
                    publish(1, 5),
                    publish(2, 6),
                    publish(1, 7),
                    publish(1, 8),
                    S::Send(20),
                    S::Lost,
                    connect(false),
                    SEND_ALL,
                    S::Broker(B::ConnAck {
                        session_present: true,
                        code: 0,
                    }),
                    S::Receive(64),
                    SEND_ALL,
                    S::Broker(B::PubAck(IdRef::Known(0))),
                    S::Broker(B::PubRec(IdRef::Known(1))),
                    S::Receive(64),
                    SEND_ALL,
                    S::Advance(600),
                    SEND_ALL,
                    S::Broker(B::PubAck(IdRef::Known(1))),
                    S::Broker(B::PubComp(IdRef::Known(0))),
                    S::Receive(64),
                ],
            ),
        ),
        s(
            "oversized-publish-skipped",
            0,
            with(
                online(true),
                vec![
                    S::Broker(B::Publish {
                        qos: 1,
                        dup: false,
                        retain: false,
                        topic: 0,
                        id: IdRef::Raw(3),
                        payload_len: 300,
                    }),
                    S::Receive(100),
                    S::Receive(100),
                    S::Receive(100),
                    S::Receive(100),
                    SEND_ALL,
                    S::Broker(B::PingResp),
                    S::Receive(64),
                ],
            ),
        ),
        s(
            "refused-then-garbage",
            4,
            vec![
                connect(true),
                SEND_ALL,
                S::Broker(B::ConnAck {
                    session_present: false,
                    code: 4,
                }),
                S::Receive(64),
                connect(true),
                SEND_ALL,
                S::Wire(vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
                S::Receive(64),
                connect(true),
                S::Advance(400),
            ],
        ),
    ]
}

/// Ring scripts: wrap-around, rotation by `contiguous`, clamping.
pub fn ring_seeds() -> Vec<Seed> {
    let r = |name, cap: u8, ops: Vec<Op>| seed("ring", name, ring::encode_script(cap, &ops));
    vec![
        r(
            "wrap-and-rotate",
            2,
            vec![
                Op::Push(b"abcde".to_vec()),
                Op::Consume(3),
                Op::Push(b"fghij".to_vec()),
                Op::Contiguous(6),
                Op::Consume(2),
                Op::Commit {
                    write: 3,
                    fill: b'z',
                    commit: 2,
                },
            ],
        ),
        r(
            "receive-in-place",
            3,
            vec![
                Op::Commit {
                    write: 60,
                    fill: 1,
                    commit: 60,
                },
                Op::Consume(50),
                Op::Commit {
                    write: 40,
                    fill: 2,
                    commit: 200,
                },
                Op::Contiguous(30),
                Op::Clear,
                Op::Push(vec![7; 70]),
            ],
        ),
        r(
            "tiny",
            1,
            vec![Op::Push(b"xy".to_vec()), Op::Contiguous(2), Op::Consume(9)],
        ),
    ]
}

/// Credential cases: the research notes' vectors V1 to V5, and bad inputs.
pub fn sign_seeds() -> Vec<Seed> {
    let case = |pk: &str, dn: &str, ds: &str, id: &str, ts: Option<&str>, method, mode| Case {
        product_key: pk.into(),
        device_name: dn.into(),
        device_secret: ds.into(),
        client_id: id.into(),
        timestamp: ts.map(Into::into),
        method,
        securemode: mode,
        capacities: 0,
    };
    let v1 = case("pk", "device", "secret", "12345", Some("789"), 1, 3);
    let c = |name, case: Case| seed("sign", name, case.write());
    vec![
        c("v1-hmacsha1", v1.clone()),
        c(
            "v2-hmacsha1",
            case(
                "a14Xib5kdYd",
                "light1983432",
                "oLyaKqVxtRvjH284LdhqVgVUx1UPy6zq",
                "SN1928339",
                Some("1539421321846"),
                1,
                2,
            ),
        ),
        c(
            "v3-hmacsha256",
            Case {
                method: 0,
                ..v1.clone()
            },
        ),
        c(
            "v4-hmacmd5",
            Case {
                method: 2,
                ..v1.clone()
            },
        ),
        c(
            "v5-link-sdk",
            case(
                "pk",
                "device",
                "secret",
                "pk.device",
                Some("2524608000000"),
                0,
                2,
            ),
        ),
        c(
            "no-timestamp",
            Case {
                timestamp: None,
                ..v1.clone()
            },
        ),
        c(
            "bar-in-client-id",
            Case {
                client_id: "a|b".into(),
                ..v1.clone()
            },
        ),
        c(
            "small-buffers",
            Case {
                capacities: 2,
                ..v1.clone()
            },
        ),
    ]
}

fn alink_seed(name: &'static str, handler: Handler, states: u8, fail: u8, payload: &str) -> Seed {
    let header = Header {
        handler,
        states,
        fail,
        small_buffer: false,
    };
    seed(
        "alink",
        name,
        crate::alink::encode(&header, payload.as_bytes()),
    )
}

/// No failing output (index 3 is past the three switches).
pub const NO_FAIL: u8 = 3;

/// Alink payloads from the core's tests and the platform documentation.
pub fn alink_seeds() -> Vec<Seed> {
    let set = Handler::PropertySet;
    let toggle = || Handler::Service(String::new());
    vec![
        alink_seed(
            "set-two",
            set.clone(),
            0,
            NO_FAIL,
            r#"{"method":"thing.service.property.set","id":"123","params":{"Relay1":1,"LED":true},"version":"1.0.0"}"#,
        ),
        alink_seed(
            "set-numeric-id",
            set.clone(),
            0b010,
            NO_FAIL,
            r#"{"id":99,"params":{"LED":0}}"#,
        ),
        alink_seed(
            "set-unknown-switch",
            set.clone(),
            0,
            NO_FAIL,
            r#"{"id":"5","params":{"Relay1":1,"Fan":1}}"#,
        ),
        alink_seed(
            "set-wrong-type",
            set.clone(),
            0,
            NO_FAIL,
            r#"{"id":"6","params":{"LED":1,"Relay1":"on"}}"#,
        ),
        alink_seed(
            "set-duplicate",
            set.clone(),
            0,
            NO_FAIL,
            r#"{"id":"13","params":{"LED":1,"LED":0}}"#,
        ),
        alink_seed(
            "set-output-failure",
            set.clone(),
            0,
            1,
            r#"{"id":"3","params":{"Relay1":1,"LED":1}}"#,
        ),
        alink_seed(
            "set-truncated",
            set,
            0,
            NO_FAIL,
            r#"{"id":"14","params":{"LED":1}"#,
        ),
        alink_seed(
            "toggle",
            toggle(),
            0,
            NO_FAIL,
            r#"{"id":"200","version":"1.0","params":{"name":"Relay1"},"method":"thing.service.Toggle"}"#,
        ),
        alink_seed(
            "toggle-output-failure",
            toggle(),
            0,
            1,
            r#"{"id":"9","params":{"name":"LED"}}"#,
        ),
        alink_seed(
            "toggle-name-not-string",
            toggle(),
            0,
            NO_FAIL,
            r#"{"id":"3","params":{"name":1}}"#,
        ),
        alink_seed(
            "service-unknown",
            Handler::Service("Reboot".into()),
            0,
            NO_FAIL,
            r#"{"id":"1","params":{}}"#,
        ),
        alink_seed(
            "post-reply-ok",
            Handler::PostReply(vec![7, 8]),
            0,
            NO_FAIL,
            r#"{"code":200,"data":{},"id":"7","message":"success","method":"thing.event.property.post","version":"1.0"}"#,
        ),
        alink_seed(
            "post-reply-rejected",
            Handler::PostReply(vec![7, 8]),
            0,
            NO_FAIL,
            r#"{"code":6813,"data":{},"id":"8","message":"The format of result is error!","method":"thing.event.property.post","version":"1.0"}"#,
        ),
        alink_seed(
            "ntp-strings",
            Handler::Ntp(1200),
            0,
            NO_FAIL,
            r#"{"deviceSendTime":"1000","serverRecvTime":"1571724098110","serverSendTime":"1571724098115"}"#,
        ),
        alink_seed(
            "ntp-numbers",
            Handler::Ntp(1200),
            0,
            NO_FAIL,
            r#"{"deviceSendTime":1000,"serverRecvTime":1571724098110,"serverSendTime":"1571724098115"}"#,
        ),
    ]
}

/// Self-hosted commands from the core's tests and docs/.
pub fn selfhosted_seeds() -> Vec<Seed> {
    let c = |name, states, fail, payload: &str| {
        seed(
            "selfhosted",
            name,
            crate::selfhosted::encode(states, fail, payload.as_bytes()),
        )
    };
    vec![
        c(
            "single",
            0,
            NO_FAIL,
            r#"{"id":"42","switch":"Relay1","on":true}"#,
        ),
        c(
            "multi",
            0b001,
            NO_FAIL,
            r#"{"id":43,"switches":{"Relay1":0,"LED":true}}"#,
        ),
        c("no-id", 0b010, NO_FAIL, r#"{"switch":"LED","on":false}"#),
        c(
            "unknown-switch",
            0,
            NO_FAIL,
            r#"{"id":"8","switches":{"LED":1,"Fan":0}}"#,
        ),
        c(
            "bad-value",
            0,
            NO_FAIL,
            r#"{"id":"2","switch":"LED","on":"yes"}"#,
        ),
        c(
            "conflict",
            0,
            NO_FAIL,
            r#"{"id":"11","switch":"LED","on":true,"switches":{"LED":1}}"#,
        ),
        c(
            "duplicate",
            0,
            NO_FAIL,
            r#"{"id":"9","switches":{"LED":1,"LED":0}}"#,
        ),
        c(
            "truncated",
            0,
            NO_FAIL,
            r#"{"id":"12","switch":"LED","on":true"#,
        ),
        c(
            "output-failure",
            0,
            0,
            r#"{"id":"1","switches":{"LED":true,"Relay1":true}}"#,
        ),
    ]
}

/// Host configuration files: the repository's examples, the runner's test files, and
/// structured files that pass every check.
pub fn host_config_seeds() -> Vec<Seed> {
    use crate::host_config::{encode_raw, encode_structured};
    let raw = |name, text: &str| seed("host_config", name, encode_raw(text));
    let st = |name, fields: &[(&str, u8, &[u8])]| {
        seed("host_config", name, encode_structured(fields, ""))
    };
    // Selector: bit 0 present, kind << 1 (0: dictionary, 5 for a secret: integer), quoting << 4.
    let secret = |s: &str| {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    };
    let pw = secret("board-1-password");
    let ds = secret("replace-with-the-device-secret");
    vec![
        raw(
            "example-aliyun",
            include_str!("../../../examples/aliyun.toml"),
        ),
        raw(
            "example-mosquitto",
            include_str!("../../../examples/mosquitto.toml"),
        ),
        raw(
            "selfhosted-insecure",
            "profile = \"self-hosted\"\nbroker_host = \"localhost\"\ndevice_id = \"d1\"\n\
             username = \"dev\"\npassword = \"pa55-SECRET-word\"\ntls_peer_verify = false\n",
        ),
        raw("password-integer", "password = 12345678901\n"),
        raw("unknown-key", "brokr_port = 1\n"),
        st(
            "structured-selfhosted",
            &[
                ("profile", 0, &[1]),
                ("broker_host", 0, &[0]),
                ("tls_peer_verify", 0, &[0]),
                ("username", 0, &[0]),
                ("password", 0, &pw),
                ("device_id", 0, &[0]),
                ("keepalive_s", 0, &[6]),
                ("backoff_min_ms", 0, &[8]),
                ("backoff_max_ms", 0, &[19]),
                ("switches", 0, &[2, 0, 1]),
            ],
        ),
        st(
            "structured-aliyun",
            &[
                ("profile", 0, &[0]),
                ("broker_host", 0, &[1]),
                ("aliyun_product_key", 0, &[0]),
                ("aliyun_device_name", 0, &[0]),
                ("aliyun_device_secret", 0, &ds),
                ("aliyun_sign_method", 0, &[0]),
                ("keepalive_s", 0, &[6]),
                ("ca_file", 0, &[0x82, 0, 2]),
                ("switches", 0, &[2, 0, 1]),
            ],
        ),
    ]
}

/// Every seed.
pub fn all() -> Vec<Seed> {
    let mut v = decode_seeds();
    v.extend(session_seeds());
    v.extend(ring_seeds());
    v.extend(sign_seeds());
    v.extend(alink_seeds());
    v.extend(selfhosted_seeds());
    v.extend(host_config_seeds());
    v.extend(shell_seeds());
    v.extend(store_seeds());
    v
}

/// `shell` seeds: one line per command form, and refusals.
pub fn shell_seeds() -> Vec<Seed> {
    [
        ("show", "mqtts show"),
        ("set-port", "mqtts set broker_port 18883"),
        ("set-quoted", "mqtts set password \"two words\""),
        ("set-secret-no-echo", "mqtts set aliyun_product_secret"),
        ("set-power-on", "mqtts set power_on.Relay1 last"),
        ("unset", "mqtts unset keepalive_s"),
        ("apply", "mqtts apply"),
        ("factory-reset", "mqtts factory-reset"),
        ("bad-value", "mqtts set tls yes"),
        ("unterminated", "mqtts set password \"open"),
    ]
    .into_iter()
    .map(|(name, line)| seed("shell", name, line.as_bytes().to_vec()))
    .collect()
}

fn record(key: &str, value: Option<&str>) -> Vec<u8> {
    let mut buf = [0u8; mqtts_core::store::MAX_RECORD_LEN];
    let n = mqtts_core::store::encode(&mqtts_core::store::Record { key, value }, &mut buf)
        .expect("seed record");
    buf[..n].to_vec()
}

/// `store` seeds: valid stores, an erased key, damage, a foreign version, erased flash.
pub fn store_seeds() -> Vec<Seed> {
    let mut two = record("broker_port", Some("18883"));
    two.extend(record("password", Some("n3w")));
    let mut erased = two.clone();
    erased.extend(record("password", None));
    let mut damaged = two.clone();
    damaged[9] ^= 0x20;
    let mut foreign = record("broker_port", Some("1"));
    foreign[2] = 2;
    foreign.extend(record("power_on.LED", Some("last")));
    let mut flash = record("last.Relay1", Some("true"));
    flash.extend([0xFF; 16]);
    vec![
        seed("store", "one", record("keepalive_s", Some("90"))),
        seed("store", "two", two),
        seed("store", "erased", erased),
        seed("store", "damaged-crc", damaged),
        seed("store", "foreign-version", foreign),
        seed("store", "erased-flash-tail", flash),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtts_core::codec::decode;
    use std::path::PathBuf;

    fn path(s: &Seed) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(s.target)
            .join(format!("seed-{}", s.name))
    }

    #[test]
    fn seed_files_match_this_list() {
        let write = std::env::var_os("MQTTS_WRITE_SEEDS").is_some();
        for s in all() {
            let p = path(&s);
            if write {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, &s.bytes).unwrap();
            }
            let on_disk = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(on_disk, s.bytes, "{} is stale", p.display());
        }
        // No seed file without an entry here.
        for target in [
            "decode",
            "session",
            "ring",
            "sign",
            "alink",
            "selfhosted",
            "host_config",
        ] {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("corpus")
                .join(target);
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if let Some(seed_name) = name.strip_prefix("seed-") {
                    assert!(
                        all()
                            .iter()
                            .any(|s| s.target == target && s.name == seed_name),
                        "{target}/{name} is not in seeds.rs"
                    );
                }
            }
        }
    }

    #[test]
    fn decode_seeds_are_whole_valid_packets() {
        for s in decode_seeds() {
            let result = decode(&s.bytes);
            if MALFORMED.contains(&s.name) {
                assert!(result.is_err(), "{}: {result:?}", s.name);
                continue;
            }
            let (_, used) = result
                .unwrap()
                .unwrap_or_else(|| panic!("{} incomplete", s.name));
            if s.name != "pingresp-then-connack" {
                assert_eq!(used, s.bytes.len(), "{}", s.name);
            }
            crate::decode::run(&s.bytes);
        }
    }

    #[test]
    fn session_seeds_reach_their_flows() {
        let got = |name: &str| {
            let s = session_seeds()
                .into_iter()
                .find(|s| s.name == name)
                .unwrap();
            session::run_script(&s.bytes)
        };
        let qos1 = got("qos1-publish-puback");
        assert_eq!((qos1.connected, qos1.published, qos1.errors), (1, 1, 0));
        let qos2 = got("qos2-publish-pubrec-pubcomp");
        assert_eq!((qos2.connected, qos2.published, qos2.errors), (1, 1, 0));
        let sub = got("connack-split-subscribe-incoming");
        assert_eq!(
            (
                sub.connected,
                sub.subscribed,
                sub.messages,
                sub.unsubscribed,
                sub.errors
            ),
            (1, 1, 2, 1, 0)
        );
        let ka = got("keepalive-ping-and-timeout");
        assert_eq!((ka.connected, ka.errors), (1, 1), "{ka:?}");
        let rc = got("reconnect-resends-with-dup");
        assert_eq!((rc.connected, rc.published, rc.errors), (2, 3, 0), "{rc:?}");
        let big = got("oversized-publish-skipped");
        assert_eq!((big.skipped, big.errors), (1, 0), "{big:?}");
        let bad = got("refused-then-garbage");
        assert_eq!((bad.connected, bad.errors), (0, 3), "{bad:?}");
    }

    #[test]
    fn script_formats_round_trip() {
        let steps = [
            S::Wire(vec![1, 2, 3]),
            S::Broker(B::Publish {
                qos: 2,
                dup: true,
                retain: false,
                topic: 3,
                id: IdRef::Raw(0x1234),
                payload_len: 999,
            }),
            S::Broker(B::SubAck {
                id: IdRef::Known(5),
                count: 3,
                codes: 0xe4,
            }),
            S::Advance(123_456),
            S::Connect {
                flags: 0xff,
                keep_alive: 300,
            },
        ];
        let bytes = session::encode_script(7, &steps);
        let mut input = crate::input::Input::new(&bytes);
        assert_eq!(input.u8(), 7);
        for want in &steps {
            assert_eq!(&session::Step::read(&mut input), want);
        }
        assert!(input.is_empty());

        let case = sign_seeds().pop().unwrap();
        let parsed = Case::read(&mut crate::input::Input::new(&case.bytes));
        assert_eq!(parsed.write(), case.bytes);
    }

    #[test]
    fn other_seeds_pass_their_targets() {
        for s in ring_seeds() {
            ring::run(&s.bytes);
        }
        for s in sign_seeds() {
            crate::sign::run(&s.bytes);
        }
        for s in shell_seeds() {
            crate::shell::run(&s.bytes);
        }
        for s in store_seeds() {
            crate::store::run(&s.bytes);
        }
    }
    fn find(seeds: Vec<Seed>, name: &str) -> Seed {
        seeds.into_iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn alink_seeds_reach_their_outcomes() {
        use crate::alink::{bank_with, Recorder};
        use mqtts_core::alink::ntp::NtpResponse;
        use mqtts_core::alink::property::{handle_property_set, match_post_reply, PostReply};
        use mqtts_core::alink::service::handle_service;
        for s in alink_seeds() {
            crate::alink::run(&s.bytes);
        }
        let code = |name: &str| {
            let s = find(alink_seeds(), name);
            let mut input = crate::input::Input::new(&s.bytes);
            let h = Header::read(&mut input);
            let payload = input.bytes(s.bytes.len());
            let mut bank = bank_with(h.states);
            let mut out = Recorder {
                fail: Some(usize::from(h.fail)),
                ..Recorder::default()
            };
            let mut buf = [0u8; 128];
            let handled = match &h.handler {
                Handler::PropertySet => handle_property_set(payload, &mut bank, &mut out, &mut buf),
                Handler::Service(id) => {
                    let id = if id.is_empty() { "Toggle" } else { id };
                    handle_service(id, payload, &mut bank, &mut out, &mut buf)
                }
                other => panic!("{other:?}"),
            };
            handled.unwrap().code
        };
        for (name, want) in [
            ("set-two", 200),
            ("set-numeric-id", 200),
            ("set-unknown-switch", 460),
            ("set-wrong-type", 460),
            ("set-duplicate", 460),
            ("set-output-failure", 500),
            ("set-truncated", 460),
            ("toggle", 200),
            ("toggle-output-failure", 500),
            ("toggle-name-not-string", 460),
            ("service-unknown", 404),
        ] {
            assert_eq!(code(name), want, "{name}");
        }
        let reply = |name: &str| {
            let s = find(alink_seeds(), name);
            let header_len = Header::read(&mut crate::input::Input::new(&s.bytes))
                .write()
                .len();
            let mut pending = mqtts_core::alink::ids::PendingPosts::<4>::new();
            for id in [7, 8] {
                pending.insert(mqtts_core::alink::ids::MessageId::new(id).unwrap());
            }
            match_post_reply(&s.bytes[header_len..], &mut pending)
        };
        assert!(matches!(reply("post-reply-ok"), Ok(PostReply::Acked(id)) if id.value() == 7));
        assert!(matches!(
            reply("post-reply-rejected"),
            Ok(PostReply::Rejected { code: 6813, .. })
        ));
        for name in ["ntp-strings", "ntp-numbers"] {
            let s = find(alink_seeds(), name);
            let payload = &s.bytes[10..];
            let r = NtpResponse::parse(payload).unwrap();
            assert_eq!(r.utc_ms(1200), Ok(1_571_724_098_212), "{name}");
        }
    }

    #[test]
    fn selfhosted_seeds_reach_their_outcomes() {
        use crate::alink::{bank_with, Recorder};
        use mqtts_core::selfhosted::{error_str, handle_command};
        for (name, want) in [
            ("single", None),
            ("multi", None),
            ("no-id", None),
            ("unknown-switch", Some("unknown_switch")),
            ("bad-value", Some("bad_value")),
            ("conflict", Some("conflicting_fields")),
            ("duplicate", Some("duplicate_switch")),
            ("truncated", Some("malformed_json")),
            ("output-failure", Some("output_failed")),
        ] {
            let s = find(selfhosted_seeds(), name);
            crate::selfhosted::run(&s.bytes);
            let mut bank = bank_with(s.bytes[0] & 7);
            let mut out = Recorder {
                fail: Some(usize::from((s.bytes[0] >> 3) & 3)),
                ..Recorder::default()
            };
            let h = handle_command(&s.bytes[1..], &mut bank, &mut out, &mut [0u8; 96]).unwrap();
            assert_eq!(h.error.map(error_str), want, "{name}");
        }
    }

    #[test]
    fn host_config_seeds_reach_their_outcomes() {
        use crate::host_config::text_of;
        use mqtts_sim::host_config::HostConfig;
        for s in host_config_seeds() {
            crate::host_config::run(&s.bytes);
        }
        let config = |name: &str| {
            let (text, _) = text_of(&find(host_config_seeds(), name).bytes);
            HostConfig::parse(&text)
        };
        for name in ["example-aliyun", "example-mosquitto", "structured-aliyun"] {
            config(name).unwrap().check(true).unwrap();
        }
        for name in ["selfhosted-insecure", "structured-selfhosted"] {
            config(name).unwrap().check(false).unwrap();
        }
        let (text, secrets) = text_of(&find(host_config_seeds(), "structured-aliyun").bytes);
        assert!(
            text.contains("ca_file = [\"/nonexistent/ca.pem\", \"certs/ca.pem\"]"),
            "{text}"
        );
        assert_eq!(secrets, ["replace-with-the-device-secret"]);
        for name in ["password-integer", "unknown-key"] {
            assert!(config(name).is_err(), "{name}");
        }
    }
}
