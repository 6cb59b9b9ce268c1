//! Alibaba dynamic registration over MQTT ("one secret per product", 一型一密): the device
//! knows ProductKey, ProductSecret and its DeviceName, connects once with credentials signed
//! by the ProductSecret, and the platform answers with a PUBLISH on a fixed topic.
//!
//! The rules, from Alibaba's C Link SDK (`components/dynreg-mqtt/aiot_dynregmq_api.c`, copy
//! read: iotali/c_link_sdk_demo@29bffc7, file copyright Alibaba Group; see
//! docs/provisioning.md for the line numbers):
//! - client id `${dn}.${pk}|random=${r},authType=${t},securemode=2,signmethod=hmacsha256|`,
//!   with `,instanceId=${id}` before the last `|` when the host is
//!   `${id}.mqtt.iothub.aliyuncs.com`; `t` is `register` (DeviceName pre-registered in the
//!   console) or `regnwl` (no pre-registration); `r` is a random `u32` in decimal;
//! - user name `${dn}&${pk}`;
//! - password: upper-case hex HMAC-SHA256, key = ProductSecret, message
//!   `"deviceName" dn "productKey" pk "random" r`;
//! - TLS only ("动态注册必需使用TLS方式建连", `aiot_dynregmq_api.h`); the SDK turns reconnect
//!   off for this connection;
//! - `register` reply: topic `/ext/register`, JSON with `deviceSecret`;
//!   `regnwl` reply: topic `/ext/regnwl`, JSON with `clientId` and `deviceToken`, then the
//!   device logs in with client id `${clientId}|authType=connwl,securemode=-2,…|`, user name
//!   `${dn}&${pk}` and the token as password ([`connwl_credentials`]).
//!
//! The device does not subscribe: the platform publishes the reply on its own.

use heapless::String;
use hmac::Hmac;
use serde::Deserialize;

use super::sign::{check_token, hmac_hex, MqttCredentials, SignError, MAX_CLIENT_ID_LEN};
use crate::config::{ConfigError, ConfigProblem, DeviceConfig, Profile, MAX_SECRET_LEN};
use crate::options::Extra;

/// Topic of the reply to `authType=register`.
pub const REGISTER_TOPIC: &str = "/ext/register";
/// Topic of the reply to `authType=regnwl`.
pub const REGNWL_TOPIC: &str = "/ext/regnwl";
/// Host suffix of instance endpoints; the part before it is the instance id.
pub const INSTANCE_HOST_SUFFIX: &str = ".mqtt.iothub.aliyuncs.com";

pub use crate::options::AuthMode;

/// The `authType` of a registration request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterKind {
    /// `register`: the reply carries the DeviceSecret.
    Register,
    /// `regnwl` (no pre-registration): the reply carries a client id and a device token.
    NoWhitelist,
}

impl RegisterKind {
    /// The `authType` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RegisterKind::Register => "register",
            RegisterKind::NoWhitelist => "regnwl",
        }
    }
}

/// Checks the registration options against the rest of the configuration; `Ok(true)` when
/// the device must register before it can connect (mode `register`, no device secret yet).
pub fn check(config: &DeviceConfig<'_>, extra: &Extra<'_>) -> Result<bool, ConfigError> {
    let err = |field, problem| ConfigError { field, problem };
    if let Some(ps) = extra.aliyun_product_secret {
        if ps.len() > MAX_SECRET_LEN {
            return Err(err(
                "aliyun_product_secret",
                ConfigProblem::TooLong {
                    max: MAX_SECRET_LEN,
                },
            ));
        }
    }
    match extra.aliyun_auth {
        AuthMode::DeviceSecret => Ok(false),
        AuthMode::Register => {
            if config.profile.and_then(Profile::parse) != Some(Profile::Aliyun) {
                return Err(err(
                    "aliyun_auth",
                    ConfigProblem::Conflict { with: "profile" },
                ));
            }
            if !config.tls {
                return Err(err(
                    "tls",
                    ConfigProblem::Conflict {
                        with: "aliyun_auth",
                    },
                ));
            }
            if extra.aliyun_product_secret.is_none() {
                return Err(err("aliyun_product_secret", ConfigProblem::Missing));
            }
            Ok(config.aliyun_device_secret.is_none())
        }
    }
}

/// The instance id in an instance endpoint host name, as the SDK derives it.
pub fn instance_id(host: &str) -> Option<&str> {
    let at = host.find(INSTANCE_HOST_SUFFIX)?;
    let id = &host[..at];
    (!id.is_empty()).then_some(id)
}

/// Builds the CONNECT client id, user name and password of a registration request.
///
/// `random` is the request's random number (the SDK takes 4 random bytes as a `u32`).
/// `instance_id` is added when given (see [`instance_id`]).
pub fn register_credentials<const C: usize, const U: usize>(
    product_key: &str,
    device_name: &str,
    product_secret: &str,
    random: u32,
    instance_id: Option<&str>,
    kind: RegisterKind,
) -> Result<MqttCredentials<C, U>, SignError> {
    check_token(product_key, "product_key")?;
    check_token(device_name, "device_name")?;
    if product_secret.is_empty() {
        return Err(SignError::EmptyField("product_secret"));
    }
    if let Some(id) = instance_id {
        check_token(id, "instance_id")?;
    }
    // `dn.pk` is the bare id; it must respect the platform's 64-character limit.
    if device_name.len() + 1 + product_key.len() > MAX_CLIENT_ID_LEN {
        return Err(SignError::ClientIdTooLong);
    }
    let mut r = String::<10>::new();
    push_u32(&mut r, random);

    let mut id = String::<C>::new();
    let instance = match instance_id {
        Some(i) => [",instanceId=", i],
        None => ["", ""],
    };
    for part in [
        device_name,
        ".",
        product_key,
        "|random=",
        r.as_str(),
        ",authType=",
        kind.as_str(),
        ",securemode=2,signmethod=hmacsha256",
        instance[0],
        instance[1],
        "|",
    ] {
        id.push_str(part)
            .map_err(|_| SignError::BufferTooSmall("client_id"))?;
    }
    let username = username::<U>(device_name, product_key)?;
    let password = hmac_hex::<Hmac<sha2::Sha256>>(
        product_secret.as_bytes(),
        &[
            "deviceName",
            device_name,
            "productKey",
            product_key,
            "random",
            r.as_str(),
        ],
    )?;
    Ok(MqttCredentials {
        client_id: id,
        username,
        password,
    })
}

fn username<const U: usize>(device_name: &str, product_key: &str) -> Result<String<U>, SignError> {
    let mut username = String::<U>::new();
    for part in [device_name, "&", product_key] {
        username
            .push_str(part)
            .map_err(|_| SignError::BufferTooSmall("username"))?;
    }
    Ok(username)
}

fn push_u32<const N: usize>(out: &mut String<N>, value: u32) {
    let mut digits = [0u8; 10];
    let mut n = value;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in digits[..len].iter().rev() {
        // 10 digits always fit a String<10>.
        let _ = out.push(char::from(*d));
    }
}

/// The login after a `regnwl` registration: client id
/// `${client_id}|authType=connwl,securemode=-2|`, user name `${dn}&${pk}`, password = the
/// device token. (The SDK also sends its own `_ss=1,ext=3,_v=…` flags.)
pub fn connwl_credentials<const C: usize, const U: usize>(
    client_id: &str,
    device_name: &str,
    product_key: &str,
    device_token: &str,
) -> Result<(String<C>, String<U>, String<128>), SignError> {
    check_token(client_id, "client_id")?;
    check_token(device_name, "device_name")?;
    check_token(product_key, "product_key")?;
    check_token(device_token, "device_token")?;
    let mut id = String::<C>::new();
    for part in [client_id, "|authType=connwl,securemode=-2|"] {
        id.push_str(part)
            .map_err(|_| SignError::BufferTooSmall("client_id"))?;
    }
    let mut token = String::<128>::new();
    token
        .push_str(device_token)
        .map_err(|_| SignError::BufferTooSmall("password"))?;
    Ok((id, username::<U>(device_name, product_key)?, token))
}

/// What the platform answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterReply<'a> {
    /// `/ext/register`: the DeviceSecret to store (never print it).
    DeviceSecret(&'a str),
    /// `/ext/regnwl`: the client id and device token for a `connwl` login.
    Token {
        /// Client id to log in with.
        client_id: &'a str,
        /// Device token, the password (never print it).
        device_token: &'a str,
    },
}

/// Why a registration reply was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// Not one of the reply topics.
    UnknownTopic,
    /// The payload is not a JSON object of strings we can read (escapes are not supported:
    /// secrets and tokens are plain ASCII).
    InvalidJson,
    /// A required field is absent.
    MissingField(&'static str),
    /// A field is empty, too long or holds characters a credential cannot have.
    InvalidField(&'static str),
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(rename = "deviceSecret", borrow, default)]
    device_secret: Option<&'a str>,
    #[serde(rename = "clientId", borrow, default)]
    client_id: Option<&'a str>,
    #[serde(rename = "deviceToken", borrow, default)]
    device_token: Option<&'a str>,
}

fn field<'a>(
    value: Option<&'a str>,
    name: &'static str,
    max: usize,
) -> Result<&'a str, ReplyError> {
    let v = value.ok_or(ReplyError::MissingField(name))?;
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ReplyError::InvalidField(name));
    }
    Ok(v)
}

/// Parses a PUBLISH received during registration. Unknown JSON fields (`productKey`,
/// `deviceName`, …) are ignored.
pub fn parse_reply<'a>(topic: &str, payload: &'a [u8]) -> Result<RegisterReply<'a>, ReplyError> {
    let reply: Reply<'a> = match serde_json_core::from_slice(payload) {
        Ok((r, _)) => r,
        Err(_) => return Err(ReplyError::InvalidJson),
    };
    match topic {
        REGISTER_TOPIC => Ok(RegisterReply::DeviceSecret(field(
            reply.device_secret,
            "deviceSecret",
            MAX_SECRET_LEN,
        )?)),
        REGNWL_TOPIC => Ok(RegisterReply::Token {
            client_id: field(reply.client_id, "clientId", MAX_CLIENT_ID_LEN)?,
            device_token: field(reply.device_token, "deviceToken", 128)?,
        }),
        _ => Err(ReplyError::UnknownTopic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Creds = MqttCredentials<160, 128>;

    /// Expected passwords computed independently with OpenSSL:
    /// `printf '%s' 'deviceNamerelay-board-1productKeya1B2c3D4e5Frandom12345' | openssl dgst -sha256 -hmac 'ProdS3cretValue'`
    const R1: &str = "0846d153dae96d2abf355e3783bc8cf20ed63599d771e925243e7622e98ea5fb";
    /// `printf '%s' 'deviceNamedeviceproductKeypkrandom789' | openssl dgst -sha256 -hmac 'psecret'`
    const R2: &str = "897a4618aa0560ee417986f79e6b07818b037320c5a3e7e81700de1b57f9a0a6";

    #[test]
    fn register_matches_openssl() {
        let c: Creds = register_credentials(
            "a1B2c3D4e5F",
            "relay-board-1",
            "ProdS3cretValue",
            12345,
            None,
            RegisterKind::Register,
        )
        .unwrap();
        assert_eq!(
            c.client_id.as_str(),
            "relay-board-1.a1B2c3D4e5F|random=12345,authType=register,securemode=2,signmethod=hmacsha256|"
        );
        assert_eq!(c.username.as_str(), "relay-board-1&a1B2c3D4e5F");
        assert_eq!(c.password.as_str(), R1.to_ascii_uppercase());

        let c: Creds = register_credentials(
            "pk",
            "device",
            "psecret",
            789,
            Some("iot-06z00abc"),
            RegisterKind::NoWhitelist,
        )
        .unwrap();
        assert_eq!(
            c.client_id.as_str(),
            "device.pk|random=789,authType=regnwl,securemode=2,signmethod=hmacsha256,instanceId=iot-06z00abc|"
        );
        assert!(c.password.eq_ignore_ascii_case(R2));
    }

    #[test]
    fn random_is_decimal_u32() {
        for (r, text) in [(0u32, "0"), (7, "7"), (u32::MAX, "4294967295")] {
            let c: Creds =
                register_credentials("pk", "dn", "ps", r, None, RegisterKind::Register).unwrap();
            let expected = std::format!("dn.pk|random={text},");
            assert!(c.client_id.starts_with(&expected), "{}", c.client_id);
        }
    }

    #[test]
    fn bad_inputs_are_refused() {
        let f = |pk, dn, ps| {
            register_credentials::<160, 128>(pk, dn, ps, 1, None, RegisterKind::Register)
                .unwrap_err()
        };
        assert_eq!(f("pk", "dn", ""), SignError::EmptyField("product_secret"));
        assert_eq!(
            f("p|k", "dn", "s"),
            SignError::InvalidCharacter("product_key")
        );
        assert_eq!(f("pk", "", "s"), SignError::EmptyField("device_name"));
        let long = "d".repeat(62);
        assert_eq!(f("pk", &long, "s"), SignError::ClientIdTooLong);
        assert_eq!(
            register_credentials::<20, 128>("pk", "dn", "s", 1, None, RegisterKind::Register)
                .unwrap_err(),
            SignError::BufferTooSmall("client_id")
        );
    }

    #[test]
    fn instance_id_like_the_sdk() {
        assert_eq!(
            instance_id("iot-06z00abc.mqtt.iothub.aliyuncs.com"),
            Some("iot-06z00abc")
        );
        assert_eq!(instance_id("a1.iot-as-mqtt.cn-shanghai.aliyuncs.com"), None);
        assert_eq!(instance_id(".mqtt.iothub.aliyuncs.com"), None);
    }

    #[test]
    fn replies() {
        let p = br#"{"productKey":"pk","deviceName":"dn","deviceSecret":"Ds3cr3t"}"#;
        assert_eq!(
            parse_reply(REGISTER_TOPIC, p),
            Ok(RegisterReply::DeviceSecret("Ds3cr3t"))
        );
        let p =
            br#"{"clientId":"pk.dn.abc","productKey":"pk","deviceName":"dn","deviceToken":"T0k"}"#;
        assert_eq!(
            parse_reply(REGNWL_TOPIC, p),
            Ok(RegisterReply::Token {
                client_id: "pk.dn.abc",
                device_token: "T0k"
            })
        );
        assert_eq!(
            parse_reply(REGISTER_TOPIC, br#"{"deviceName":"dn"}"#),
            Err(ReplyError::MissingField("deviceSecret"))
        );
        assert_eq!(
            parse_reply(REGISTER_TOPIC, br#"{"deviceSecret":""}"#),
            Err(ReplyError::InvalidField("deviceSecret"))
        );
        assert_eq!(
            parse_reply(REGISTER_TOPIC, br#"{"deviceSecret":"a b"}"#),
            Err(ReplyError::InvalidField("deviceSecret"))
        );
        assert_eq!(
            parse_reply(REGISTER_TOPIC, b"{not json"),
            Err(ReplyError::InvalidJson)
        );
        assert_eq!(
            parse_reply("/sys/pk/dn/x", br#"{"deviceSecret":"x"}"#),
            Err(ReplyError::UnknownTopic)
        );
        assert_eq!(
            parse_reply(REGNWL_TOPIC, br#"{"clientId":"c"}"#),
            Err(ReplyError::MissingField("deviceToken"))
        );
    }

    #[test]
    fn connwl_login() {
        let (id, user, pass) =
            connwl_credentials::<160, 128>("pk.dn.abc", "dn", "pk", "T0k").unwrap();
        assert_eq!(id.as_str(), "pk.dn.abc|authType=connwl,securemode=-2|");
        assert_eq!(user.as_str(), "dn&pk");
        assert_eq!(pass.as_str(), "T0k");
    }

    #[test]
    fn config_rules() {
        let aliyun = DeviceConfig {
            profile: Some("aliyun"),
            broker_host: Some("h"),
            aliyun_product_key: Some("pk"),
            aliyun_device_name: Some("dn"),
            ..DeviceConfig::new()
        };
        let reg = Extra {
            aliyun_auth: AuthMode::Register,
            aliyun_product_secret: Some("ps"),
        };
        assert_eq!(check(&aliyun, &reg), Ok(true));
        let known = DeviceConfig {
            aliyun_device_secret: Some("ds"),
            ..aliyun
        };
        assert_eq!(check(&known, &reg), Ok(false));
        assert_eq!(check(&aliyun, &Extra::new()), Ok(false));
        let no_ps = Extra {
            aliyun_product_secret: None,
            ..reg
        };
        assert_eq!(
            check(&aliyun, &no_ps).unwrap_err().field,
            "aliyun_product_secret"
        );
        let plain = DeviceConfig {
            tls: false,
            ..aliyun
        };
        assert_eq!(check(&plain, &reg).unwrap_err().field, "tls");
        let sh = DeviceConfig {
            profile: Some("self-hosted"),
            ..aliyun
        };
        assert_eq!(check(&sh, &reg).unwrap_err().field, "aliyun_auth");
        assert_eq!(AuthMode::parse("register"), Some(AuthMode::Register));
        assert_eq!(AuthMode::parse("regnwl"), None);
    }
}
