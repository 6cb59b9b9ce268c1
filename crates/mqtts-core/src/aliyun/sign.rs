//! MQTT CONNECT credentials for a device of the Alibaba Cloud IoT Platform ("one device, one
//! secret": product key, device name and device secret).
//!
//! Per Alibaba's "Establish MQTT connections" guide (doc 73742) and the official C Link SDK:
//! - client id: `${id}|securemode=2,signmethod=hmacsha256,timestamp=${ts}|`; the part between
//!   the bars is a comma-separated list of `key=value` extension parameters (`timestamp` is
//!   optional);
//! - user name: `${deviceName}&${productKey}`;
//! - password: hex HMAC, keyed with the device secret, of the parameter names and values in
//!   ASCII order with no separators:
//!   `"clientId" id "deviceName" dn "productKey" pk ["timestamp" ts]`, where `id` is the bare id
//!   (without the `|...|` part). The platform compares hex case-insensitively; we send upper case
//!   like the Link SDK.
//!
//! The HMAC is fed piece by piece, so no message buffer is needed.

use heapless::String;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};

/// Longest bare client id the platform accepts ("64字符内").
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// The HMAC algorithm named by `signmethod`. Each variant exists only in builds with its Cargo
/// feature (`sign-hmacsha256`, `sign-hmacsha1`, `sign-hmacmd5`), so an image links only the
/// hash functions it can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "sign-hmacsha256", derive(Default))]
pub enum SignMethod {
    /// `hmacsha256`: the only method console-generated parameters use; our default.
    #[cfg(feature = "sign-hmacsha256")]
    #[default]
    HmacSha256,
    /// `hmacsha1`.
    #[cfg(feature = "sign-hmacsha1")]
    HmacSha1,
    /// `hmacmd5` (the platform's default when `signmethod` is absent).
    #[cfg(feature = "sign-hmacmd5")]
    HmacMd5,
}

/// Every method name the platform knows and the Cargo feature that builds it in.
const METHODS: [(&str, &str); 3] = [
    ("hmacsha256", "sign-hmacsha256"),
    ("hmacsha1", "sign-hmacsha1"),
    ("hmacmd5", "sign-hmacmd5"),
];

impl SignMethod {
    /// Allowed method names, for error messages (all the platform knows; those this build
    /// left out are refused by [`parse`](Self::parse) and named by [`feature_of`](Self::feature_of)).
    pub const ALLOWED: &'static str = "hmacsha256, hmacsha1, hmacmd5";

    /// The `signmethod` value as it appears in the client id.
    pub const fn as_str(self) -> &'static str {
        match self {
            #[cfg(feature = "sign-hmacsha256")]
            SignMethod::HmacSha256 => "hmacsha256",
            #[cfg(feature = "sign-hmacsha1")]
            SignMethod::HmacSha1 => "hmacsha1",
            #[cfg(feature = "sign-hmacmd5")]
            SignMethod::HmacMd5 => "hmacmd5",
        }
    }

    /// Parses a `signmethod` value (exact, lower case, as the platform spells it); `None` also
    /// for a method this build left out (see [`feature_of`](Self::feature_of)).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            #[cfg(feature = "sign-hmacsha256")]
            "hmacsha256" => Some(SignMethod::HmacSha256),
            #[cfg(feature = "sign-hmacsha1")]
            "hmacsha1" => Some(SignMethod::HmacSha1),
            #[cfg(feature = "sign-hmacmd5")]
            "hmacmd5" => Some(SignMethod::HmacMd5),
            _ => None,
        }
    }

    /// The mqtts-core Cargo feature that builds in the method called `s`, whether or not this
    /// build has it; `None` for a name the platform does not know.
    pub fn feature_of(s: &str) -> Option<&'static str> {
        METHODS
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, feature)| feature)
    }
}

/// The device identity issued by the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTriple<'a> {
    /// `ProductKey`.
    pub product_key: &'a str,
    /// `DeviceName`.
    pub device_name: &'a str,
    /// `DeviceSecret`, the HMAC key. Never log it.
    pub device_secret: &'a str,
}

/// The three CONNECT strings. `C` and `U` are the capacities of the client id and user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttCredentials<const C: usize, const U: usize> {
    /// Full MQTT client id, including the `|...|` extension parameters.
    pub client_id: String<C>,
    /// `${deviceName}&${productKey}`.
    pub username: String<U>,
    /// Upper-case hex HMAC (64 characters for SHA-256, 40 for SHA-1, 32 for MD5).
    pub password: String<64>,
}

/// Why credentials could not be built. Field names are the snake_case names used in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignError {
    /// A required field (or a given timestamp) is empty.
    EmptyField(&'static str),
    /// The bare client id is longer than [`MAX_CLIENT_ID_LEN`].
    ClientIdTooLong,
    /// The named field holds a character that would break the client id or user name syntax
    /// (`|`, `,`, `&`, space, control or non-ASCII), or the timestamp is not all digits.
    InvalidCharacter(&'static str),
    /// `securemode` is neither 2 (TLS) nor 3 (plain TCP).
    InvalidSecureMode(u8),
    /// The output string for the named field (`client_id`, `username`) is too small.
    BufferTooSmall(&'static str),
    /// The HMAC implementation refused the key (HMAC takes any key length, so this is not
    /// expected; it exists so that no error is unwrapped).
    InvalidKey,
}

/// Builds the CONNECT client id, user name and password for `triple`.
///
/// `client_id` is the bare device-chosen id (for example the MAC, the serial number, or
/// `${productKey}.${deviceName}` like the Link SDK). `timestamp` is milliseconds since the epoch
/// as decimal digits; the platform does not check it against its clock, so a constant works on a
/// device without a real-time clock. `securemode` is 2 for TLS (what this firmware uses) or 3
/// for plain TCP.
pub fn credentials<const C: usize, const U: usize>(
    triple: &DeviceTriple,
    client_id: &str,
    method: SignMethod,
    timestamp: Option<&str>,
    securemode: u8,
) -> Result<MqttCredentials<C, U>, SignError> {
    check_token(client_id, "client_id")?;
    if client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(SignError::ClientIdTooLong);
    }
    check_token(triple.product_key, "product_key")?;
    check_token(triple.device_name, "device_name")?;
    if triple.device_secret.is_empty() {
        return Err(SignError::EmptyField("device_secret"));
    }
    if let Some(ts) = timestamp {
        if ts.is_empty() {
            return Err(SignError::EmptyField("timestamp"));
        }
        if !ts.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SignError::InvalidCharacter("timestamp"));
        }
    }
    let mode = match securemode {
        2 => "2",
        3 => "3",
        other => return Err(SignError::InvalidSecureMode(other)),
    };

    let mut id = String::<C>::new();
    let ts_parts: [&str; 2] = match timestamp {
        Some(ts) => [",timestamp=", ts],
        None => ["", ""],
    };
    for part in [
        client_id,
        "|securemode=",
        mode,
        ",signmethod=",
        method.as_str(),
        ts_parts[0],
        ts_parts[1],
        "|",
    ] {
        id.push_str(part)
            .map_err(|_| SignError::BufferTooSmall("client_id"))?;
    }

    let mut username = String::<U>::new();
    for part in [triple.device_name, "&", triple.product_key] {
        username
            .push_str(part)
            .map_err(|_| SignError::BufferTooSmall("username"))?;
    }

    let content = [
        "clientId",
        client_id,
        "deviceName",
        triple.device_name,
        "productKey",
        triple.product_key,
        if timestamp.is_some() { "timestamp" } else { "" },
        timestamp.unwrap_or(""),
    ];
    let key = triple.device_secret.as_bytes();
    let password = match method {
        #[cfg(feature = "sign-hmacsha256")]
        SignMethod::HmacSha256 => hmac_hex::<Hmac<sha2::Sha256>>(key, &content)?,
        #[cfg(feature = "sign-hmacsha1")]
        SignMethod::HmacSha1 => hmac_hex::<Hmac<sha1::Sha1>>(key, &content)?,
        #[cfg(feature = "sign-hmacmd5")]
        SignMethod::HmacMd5 => hmac_hex::<Hmac<md5::Md5>>(key, &content)?,
    };

    Ok(MqttCredentials {
        client_id: id,
        username,
        password,
    })
}

/// Rejects empty values and characters that would break `id|k=v,k=v|` or `dn&pk`.
pub(crate) fn check_token(value: &str, field: &'static str) -> Result<(), SignError> {
    if value.is_empty() {
        return Err(SignError::EmptyField(field));
    }
    let ok = |b: u8| b.is_ascii_graphic() && !matches!(b, b'|' | b',' | b'&');
    if value.bytes().all(ok) {
        Ok(())
    } else {
        Err(SignError::InvalidCharacter(field))
    }
}

/// Upper-case hex of the HMAC of the concatenated `parts`.
pub(crate) fn hmac_hex<M: Mac + KeyInit>(
    key: &[u8],
    parts: &[&str],
) -> Result<String<64>, SignError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut mac = <M as KeyInit>::new_from_slice(key).map_err(|_| SignError::InvalidKey)?;
    for part in parts {
        mac.update(part.as_bytes());
    }
    let mut out = String::<64>::new();
    for byte in mac.finalize().into_bytes() {
        for nibble in [byte >> 4, byte & 0x0F] {
            let c = HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
            out.push(char::from(c))
                .map_err(|_| SignError::BufferTooSmall("password"))?;
        }
    }
    Ok(out)
}

// The tests sign with HMAC-SHA256 (the default); those of the other methods need theirs.
#[cfg(all(test, feature = "sign-hmacsha256"))]
mod tests {
    use super::*;

    const V1: DeviceTriple<'static> = DeviceTriple {
        product_key: "pk",
        device_name: "device",
        device_secret: "secret",
    };

    fn creds(
        triple: &DeviceTriple,
        id: &str,
        method: SignMethod,
        ts: Option<&str>,
        mode: u8,
    ) -> Result<MqttCredentials<128, 64>, SignError> {
        credentials::<128, 64>(triple, id, method, ts, mode)
    }

    #[test]
    fn sign_method_names() {
        assert_eq!(
            SignMethod::parse("hmacsha256"),
            Some(SignMethod::HmacSha256)
        );
        assert_eq!(SignMethod::HmacSha256.as_str(), "hmacsha256");
        assert_eq!(SignMethod::default(), SignMethod::HmacSha256);
        #[cfg(feature = "sign-hmacsha1")]
        assert_eq!(SignMethod::parse("hmacsha1"), Some(SignMethod::HmacSha1));
        #[cfg(feature = "sign-hmacmd5")]
        assert_eq!(SignMethod::parse("hmacmd5"), Some(SignMethod::HmacMd5));
        // Built in or not, every name maps to its feature.
        assert_eq!(
            SignMethod::feature_of("hmacsha256"),
            Some("sign-hmacsha256")
        );
        assert_eq!(SignMethod::feature_of("hmacsha1"), Some("sign-hmacsha1"));
        assert_eq!(SignMethod::feature_of("hmacmd5"), Some("sign-hmacmd5"));
        assert_eq!(SignMethod::feature_of("sha256"), None);
        assert_eq!(
            SignMethod::parse("hmacsha1").is_some(),
            cfg!(feature = "sign-hmacsha1")
        );
        assert_eq!(
            SignMethod::parse("hmacmd5").is_some(),
            cfg!(feature = "sign-hmacmd5")
        );
        assert_eq!(SignMethod::parse("HMACSHA1"), None);
        assert_eq!(SignMethod::parse("sha256"), None);
        assert_eq!(SignMethod::parse(""), None);
    }

    #[cfg(feature = "sign-hmacsha1")]
    #[test]
    fn v1_official_hmacsha1() {
        let c = creds(&V1, "12345", SignMethod::HmacSha1, Some("789"), 3).unwrap();
        assert_eq!(
            c.client_id.as_str(),
            "12345|securemode=3,signmethod=hmacsha1,timestamp=789|"
        );
        assert_eq!(c.username.as_str(), "device&pk");
        assert!(c
            .password
            .eq_ignore_ascii_case("FAFD82A3D602B37FB0FA8B7892F24A477F851A14"));
        // We emit upper case like the Link SDK.
        assert_eq!(
            c.password.as_str(),
            "FAFD82A3D602B37FB0FA8B7892F24A477F851A14"
        );
    }

    #[cfg(feature = "sign-hmacsha1")]
    #[test]
    fn v2_community_article_hmacsha1() {
        let triple = DeviceTriple {
            product_key: "a14Xib5kdYd",
            device_name: "light1983432",
            device_secret: "oLyaKqVxtRvjH284LdhqVgVUx1UPy6zq",
        };
        let c = creds(
            &triple,
            "SN1928339",
            SignMethod::HmacSha1,
            Some("1539421321846"),
            2,
        )
        .unwrap();
        assert_eq!(
            c.client_id.as_str(),
            "SN1928339|securemode=2,signmethod=hmacsha1,timestamp=1539421321846|"
        );
        assert_eq!(c.username.as_str(), "light1983432&a14Xib5kdYd");
        assert!(c
            .password
            .eq_ignore_ascii_case("b2488041f64f425016b467ee1c94959ebd592ad1"));
    }

    #[test]
    fn v3_hmacsha256() {
        let c = creds(&V1, "12345", SignMethod::HmacSha256, Some("789"), 2).unwrap();
        assert_eq!(
            c.client_id.as_str(),
            "12345|securemode=2,signmethod=hmacsha256,timestamp=789|"
        );
        assert!(c.password.eq_ignore_ascii_case(
            "6074A46A91B1EBB2CC4EA42790AD0E80202C9843859FC292E57C4EB19FAD9E57"
        ));
        assert_eq!(c.password.len(), 64);
    }

    #[cfg(feature = "sign-hmacmd5")]
    #[test]
    fn v4_hmacmd5() {
        let c = creds(&V1, "12345", SignMethod::HmacMd5, Some("789"), 2).unwrap();
        assert_eq!(
            c.client_id.as_str(),
            "12345|securemode=2,signmethod=hmacmd5,timestamp=789|"
        );
        assert!(c
            .password
            .eq_ignore_ascii_case("14B198324FE55E1D3C88F2E705E201EE"));
    }

    #[cfg(feature = "sign-hmacsha1")]
    #[test]
    fn v5_link_sdk_style() {
        let c = creds(
            &V1,
            "pk.device",
            SignMethod::HmacSha256,
            Some("2524608000000"),
            2,
        )
        .unwrap();
        assert!(c.password.eq_ignore_ascii_case(
            "2EAB47D05EC94FAB1A34E7E9F54AEBD34A1E15770F932E05300193007E0091E9"
        ));
        let c = creds(
            &V1,
            "pk.device",
            SignMethod::HmacSha1,
            Some("2524608000000"),
            2,
        )
        .unwrap();
        assert!(c
            .password
            .eq_ignore_ascii_case("BDA9A4DAE972A03474F1BD535C7683CF411230CB"));
    }

    #[cfg(feature = "sign-hmacsha1")]
    #[test]
    fn without_timestamp_it_is_neither_sent_nor_signed() {
        let c = creds(&V1, "12345", SignMethod::HmacSha1, None, 2).unwrap();
        assert_eq!(
            c.client_id.as_str(),
            "12345|securemode=2,signmethod=hmacsha1|"
        );
        assert_eq!(c.username.as_str(), "device&pk");
        // The signature must differ from V1, whose content has "timestamp789" appended.
        let with = creds(&V1, "12345", SignMethod::HmacSha1, Some("789"), 2).unwrap();
        assert_ne!(c.password, with.password);
        assert_eq!(c.password.len(), 40);
    }

    #[test]
    fn empty_fields_are_named() {
        let e = |t: DeviceTriple, id: &str, ts: Option<&str>| {
            creds(&t, id, SignMethod::HmacSha256, ts, 2).unwrap_err()
        };
        assert_eq!(e(V1, "", Some("1")), SignError::EmptyField("client_id"));
        assert_eq!(
            e(
                DeviceTriple {
                    product_key: "",
                    ..V1
                },
                "1",
                None
            ),
            SignError::EmptyField("product_key")
        );
        assert_eq!(
            e(
                DeviceTriple {
                    device_name: "",
                    ..V1
                },
                "1",
                None
            ),
            SignError::EmptyField("device_name")
        );
        assert_eq!(
            e(
                DeviceTriple {
                    device_secret: "",
                    ..V1
                },
                "1",
                None
            ),
            SignError::EmptyField("device_secret")
        );
        assert_eq!(e(V1, "1", Some("")), SignError::EmptyField("timestamp"));
    }

    #[test]
    fn characters_that_break_the_syntax_are_rejected() {
        let e = |t: DeviceTriple, id: &str, ts: Option<&str>| {
            creds(&t, id, SignMethod::HmacSha256, ts, 2).unwrap_err()
        };
        for id in ["a|b", "a,b", "a b", "a&b", "caf\u{e9}", "a\nb", "a\0"] {
            assert_eq!(
                e(V1, id, None),
                SignError::InvalidCharacter("client_id"),
                "{id:?}"
            );
        }
        assert_eq!(
            e(
                DeviceTriple {
                    device_name: "dev&x",
                    ..V1
                },
                "1",
                None
            ),
            SignError::InvalidCharacter("device_name")
        );
        assert_eq!(
            e(
                DeviceTriple {
                    product_key: "p|k",
                    ..V1
                },
                "1",
                None
            ),
            SignError::InvalidCharacter("product_key")
        );
        for ts in ["78,9", "789|", "-1", "1.5", " 1"] {
            assert_eq!(
                e(V1, "1", Some(ts)),
                SignError::InvalidCharacter("timestamp"),
                "{ts:?}"
            );
        }
        // Device names may use the platform's extra characters.
        let ok = DeviceTriple {
            device_name: "dev-1_a@b.c:d",
            ..V1
        };
        let c = creds(&ok, "AA:BB:CC:DD:EE:FF", SignMethod::HmacSha256, None, 2).unwrap();
        assert_eq!(c.username.as_str(), "dev-1_a@b.c:d&pk");
        assert_eq!(
            c.client_id.as_str(),
            "AA:BB:CC:DD:EE:FF|securemode=2,signmethod=hmacsha256|"
        );
    }

    #[cfg(feature = "sign-hmacmd5")]
    #[test]
    fn client_id_length_limit() {
        let id64 = "a".repeat(64);
        let c = creds(&V1, &id64, SignMethod::HmacMd5, None, 2).unwrap();
        assert!(c.client_id.starts_with(id64.as_str()));
        let id65 = "a".repeat(65);
        assert_eq!(
            creds(&V1, &id65, SignMethod::HmacMd5, None, 2).unwrap_err(),
            SignError::ClientIdTooLong
        );
    }

    #[test]
    fn securemode_must_be_2_or_3() {
        for mode in [0, 1, 4, 254, 255] {
            assert_eq!(
                creds(&V1, "1", SignMethod::HmacSha256, None, mode).unwrap_err(),
                SignError::InvalidSecureMode(mode)
            );
        }
    }

    #[test]
    fn small_buffers_are_reported() {
        // "12345|securemode=2,signmethod=hmacsha256,timestamp=789|" is 55 bytes.
        let ok = credentials::<55, 9>(&V1, "12345", SignMethod::HmacSha256, Some("789"), 2);
        let ok = ok.unwrap();
        assert_eq!(ok.client_id.len(), 55);
        assert_eq!(ok.username.as_str(), "device&pk");
        assert_eq!(
            credentials::<54, 9>(&V1, "12345", SignMethod::HmacSha256, Some("789"), 2).unwrap_err(),
            SignError::BufferTooSmall("client_id")
        );
        assert_eq!(
            credentials::<55, 8>(&V1, "12345", SignMethod::HmacSha256, Some("789"), 2).unwrap_err(),
            SignError::BufferTooSmall("username")
        );
    }
}
