//! `sign`: Alibaba Cloud credentials from arbitrary strings.
//!
//! Checks: no panic; success exactly when every field is a valid token and the output strings
//! fit; on success the client id is `id|securemode=M,signmethod=S[,timestamp=T]|`, the user name
//! is `dn&pk`, and the password is the upper-hex HMAC (32/40/64 characters) computed here with
//! the RustCrypto crates directly.

use crate::input::{Input, Output};
use hmac::{Hmac, Mac};
use mqtts_core::aliyun::sign::{
    credentials, DeviceTriple, MqttCredentials, SignError, SignMethod, MAX_CLIENT_ID_LEN,
};

/// One call's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Product key.
    pub product_key: String,
    /// Device name.
    pub device_name: String,
    /// Device secret.
    pub device_secret: String,
    /// Bare client id.
    pub client_id: String,
    /// Timestamp, if any.
    pub timestamp: Option<String>,
    /// 0: sha256, 1: sha1, 2: md5.
    pub method: u8,
    /// `securemode` argument.
    pub securemode: u8,
    /// Which output capacities to use (see [`run`]).
    pub capacities: u8,
}

impl Case {
    /// Reads a case: flag bytes, then five length-prefixed strings (lossy UTF-8).
    pub fn read(input: &mut Input<'_>) -> Case {
        let method = input.u8();
        let securemode = input.u8();
        let capacities = input.u8();
        let has_ts = input.bool();
        let mut s = || String::from_utf8_lossy(input.short_bytes()).into_owned();
        let product_key = s();
        let device_name = s();
        let device_secret = s();
        let client_id = s();
        let ts = s();
        Case {
            product_key,
            device_name,
            device_secret,
            client_id,
            timestamp: has_ts.then_some(ts),
            method,
            securemode,
            capacities,
        }
    }

    /// Writes the case so that [`Case::read`] gives it back.
    pub fn write(&self) -> Vec<u8> {
        let mut out = Output::default();
        out.u8(self.method);
        out.u8(self.securemode);
        out.u8(self.capacities);
        out.bool(self.timestamp.is_some());
        for s in [
            &self.product_key,
            &self.device_name,
            &self.device_secret,
            &self.client_id,
            self.timestamp.as_deref().unwrap_or(""),
        ] {
            out.short_bytes(s.as_bytes());
        }
        out.bytes
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let case = Case::read(&mut Input::new(data));
    // Roomy outputs test the logic; tight ones test the overflow paths.
    match case.capacities % 3 {
        0 => check::<160, 140>(&case),
        1 => check::<96, 64>(&case),
        _ => check::<16, 8>(&case),
    }
}

fn method(m: u8) -> SignMethod {
    match m % 3 {
        0 => SignMethod::HmacSha256,
        1 => SignMethod::HmacSha1,
        _ => SignMethod::HmacMd5,
    }
}

fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"|,&".contains(&b))
}

fn check<const C: usize, const U: usize>(case: &Case) {
    let triple = DeviceTriple {
        product_key: &case.product_key,
        device_name: &case.device_name,
        device_secret: &case.device_secret,
    };
    let m = method(case.method);
    let result: Result<MqttCredentials<C, U>, SignError> = credentials(
        &triple,
        &case.client_id,
        m,
        case.timestamp.as_deref(),
        case.securemode,
    );

    let mut expected_id = format!(
        "{}|securemode={},signmethod={}",
        case.client_id,
        case.securemode,
        m.as_str()
    );
    if let Some(ts) = &case.timestamp {
        expected_id.push_str(",timestamp=");
        expected_id.push_str(ts);
    }
    expected_id.push('|');
    let expected_user = format!("{}&{}", case.device_name, case.product_key);
    let inputs_valid = token_ok(&case.client_id)
        && case.client_id.len() <= MAX_CLIENT_ID_LEN
        && token_ok(&case.product_key)
        && token_ok(&case.device_name)
        && !case.device_secret.is_empty()
        && case
            .timestamp
            .as_deref()
            .is_none_or(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        && matches!(case.securemode, 2 | 3);
    let fits = expected_id.len() <= C && expected_user.len() <= U;

    let creds = match result {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !(inputs_valid && fits),
                "valid input refused: {e:?} for {case:?}"
            );
            if inputs_valid {
                assert!(matches!(e, SignError::BufferTooSmall(_)), "{e:?}");
            }
            return;
        }
    };
    assert!(inputs_valid && fits, "invalid input accepted: {case:?}");
    assert!(creds.client_id.contains("securemode="));
    assert_eq!(creds.client_id.as_str(), expected_id);
    assert_eq!(creds.username.as_str(), expected_user);

    let want_len = match m {
        SignMethod::HmacSha256 => 64,
        SignMethod::HmacSha1 => 40,
        SignMethod::HmacMd5 => 32,
    };
    let pw = creds.password.as_str();
    assert_eq!(pw.len(), want_len);
    assert!(pw
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));

    let mut content = format!(
        "clientId{}deviceName{}productKey{}",
        case.client_id, case.device_name, case.product_key
    );
    if let Some(ts) = &case.timestamp {
        content.push_str("timestamp");
        content.push_str(ts);
    }
    let key = case.device_secret.as_bytes();
    let mac: Vec<u8> = match m {
        SignMethod::HmacSha256 => hmac_of::<Hmac<sha2::Sha256>>(key, &content),
        SignMethod::HmacSha1 => hmac_of::<Hmac<sha1::Sha1>>(key, &content),
        SignMethod::HmacMd5 => hmac_of::<Hmac<md5::Md5>>(key, &content),
    };
    let hex: String = mac.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(pw, hex, "password differs from the reference HMAC");
}

fn hmac_of<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &str) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().to_vec()
}
