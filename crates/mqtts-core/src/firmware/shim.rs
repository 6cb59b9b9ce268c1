//! The C shim's stable codes, mirrored from `src/socket_shim.h` (the single definition; a test
//! here parses that header and fails if the two differ).
//!
//! The shim never returns errno or libc values: those differ between picolibc (the boards) and
//! the host glibc (`native_sim`). It maps them to the small enums below, and this module turns
//! them into the core's types.

use crate::transport::TransportError;

/// A failed shim call (`enum mqtts_shim_status`, negative values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ShimStatus {
    /// Nothing can be done now; try again later.
    WouldBlock = -1,
    /// TCP connect, TLS handshake or SNTP query timed out.
    Timeout = -2,
    /// The TCP connection was refused.
    Refused = -3,
    /// The broker certificate was rejected.
    TlsVerify = -4,
    /// The TLS handshake was aborted for another (or an unreported) reason.
    TlsHandshake = -5,
    /// The broker name did not resolve.
    Dns = -6,
    /// The peer closed the connection.
    Closed = -7,
    /// No interface, no route or no link.
    NetDown = -8,
    /// Out of sockets, buffers or Mbed TLS heap.
    NoMemory = -9,
    /// The build configuration is unusable (CA certificate, static address).
    Config = -10,
    /// Anything else; the C side logged the details.
    Other = -11,
}

impl ShimStatus {
    /// Every status, in code order.
    pub const ALL: [ShimStatus; 11] = [
        ShimStatus::WouldBlock,
        ShimStatus::Timeout,
        ShimStatus::Refused,
        ShimStatus::TlsVerify,
        ShimStatus::TlsHandshake,
        ShimStatus::Dns,
        ShimStatus::Closed,
        ShimStatus::NetDown,
        ShimStatus::NoMemory,
        ShimStatus::Config,
        ShimStatus::Other,
    ];

    /// The C value.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The status with this C value; an unknown negative value is [`ShimStatus::Other`], a
    /// non-negative one is no status at all.
    pub fn from_code(code: i32) -> Option<ShimStatus> {
        if code >= 0 {
            return None;
        }
        Some(
            ShimStatus::ALL
                .iter()
                .copied()
                .find(|s| s.code() == code)
                .unwrap_or(ShimStatus::Other),
        )
    }

    /// The core's name for this failure.
    pub fn transport_error(self) -> TransportError {
        match self {
            ShimStatus::WouldBlock => TransportError::WouldBlock,
            ShimStatus::Timeout => TransportError::Timeout,
            ShimStatus::Refused => TransportError::TcpRefused,
            ShimStatus::TlsVerify => TransportError::TlsVerification,
            ShimStatus::TlsHandshake => TransportError::TlsHandshake,
            ShimStatus::Dns => TransportError::Dns,
            ShimStatus::Closed => TransportError::Closed,
            ShimStatus::NetDown | ShimStatus::NoMemory | ShimStatus::Config | ShimStatus::Other => {
                TransportError::Io
            }
        }
    }
}

/// Splits a shim result: a non-negative value (a count, a descriptor, a mask) or a status.
pub fn decode(code: i32) -> Result<u32, ShimStatus> {
    match u32::try_from(code) {
        Ok(value) => Ok(value),
        Err(_) => Err(ShimStatus::from_code(code).unwrap_or(ShimStatus::Other)),
    }
}

/// State of the default network interface (`enum mqtts_shim_net_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum NetState {
    /// No interface at all (devicetree or driver problem).
    NoInterface = 0,
    /// The interface is down or has no carrier (cable unplugged?).
    NoLink = 1,
    /// Link up, no IPv4 address yet (DHCP in progress?).
    NoAddress = 2,
    /// Link up and an IPv4 address assigned.
    Ready = 3,
}

impl NetState {
    /// The state with this C value; unknown values count as [`NetState::NoInterface`].
    pub fn from_code(code: i32) -> NetState {
        match code {
            3 => NetState::Ready,
            2 => NetState::NoAddress,
            1 => NetState::NoLink,
            _ => NetState::NoInterface,
        }
    }
}

/// What `mqtts_shim_poll` observed (`enum mqtts_shim_poll_bits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollFlags {
    /// Data (or a TLS alert / EOF) can be read.
    pub readable: bool,
    /// Data can be written.
    pub writable: bool,
    /// The peer closed the connection.
    pub hangup: bool,
    /// The socket is in error.
    pub error: bool,
}

impl PollFlags {
    /// `MQTTS_SHIM_POLL_READABLE`.
    pub const READABLE: u32 = 0x1;
    /// `MQTTS_SHIM_POLL_WRITABLE`.
    pub const WRITABLE: u32 = 0x2;
    /// `MQTTS_SHIM_POLL_HANGUP`.
    pub const HANGUP: u32 = 0x4;
    /// `MQTTS_SHIM_POLL_ERROR`.
    pub const ERROR: u32 = 0x8;

    /// Decodes a poll mask; unknown bits are ignored.
    pub fn from_bits(bits: u32) -> PollFlags {
        PollFlags {
            readable: bits & Self::READABLE != 0,
            writable: bits & Self::WRITABLE != 0,
            hangup: bits & Self::HANGUP != 0,
            error: bits & Self::ERROR != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::ca::CaSet;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// The one definition of the codes.
    const HEADER: &str = include_str!("../../../../src/socket_shim.h");

    /// `(name, value)` of every `MQTTS_SHIM_* = value,` enumerator in the header.
    fn header_constants() -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for line in HEADER.lines() {
            let line = line.split("/*").next().unwrap_or("").trim();
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if !name.starts_with("MQTTS_SHIM_") || name.contains(' ') {
                continue;
            }
            let value = value.trim().trim_end_matches(',').trim();
            let parsed = if let Some(hex) = value.strip_prefix("0x") {
                i64::from_str_radix(hex, 16)
            } else {
                value.parse::<i64>()
            };
            let value = parsed.unwrap_or_else(|_| panic!("{name}: not a plain number: {value}"));
            out.push((name.to_string(), value));
        }
        out
    }

    /// The Rust side of every header constant.
    fn rust_constants() -> Vec<(String, i64)> {
        let mut v: Vec<(&str, i64)> = std::vec![("MQTTS_SHIM_OK", 0)];
        let names = [
            "MQTTS_SHIM_WOULD_BLOCK",
            "MQTTS_SHIM_TIMEOUT",
            "MQTTS_SHIM_REFUSED",
            "MQTTS_SHIM_TLS_VERIFY",
            "MQTTS_SHIM_TLS_HANDSHAKE",
            "MQTTS_SHIM_DNS",
            "MQTTS_SHIM_CLOSED",
            "MQTTS_SHIM_NET_DOWN",
            "MQTTS_SHIM_NO_MEMORY",
            "MQTTS_SHIM_CONFIG",
            "MQTTS_SHIM_OTHER",
        ];
        for (name, status) in names.iter().zip(ShimStatus::ALL) {
            v.push((name, status.code().into()));
        }
        for (name, state) in [
            ("MQTTS_SHIM_NET_NO_INTERFACE", NetState::NoInterface),
            ("MQTTS_SHIM_NET_NO_LINK", NetState::NoLink),
            ("MQTTS_SHIM_NET_NO_ADDRESS", NetState::NoAddress),
            ("MQTTS_SHIM_NET_READY", NetState::Ready),
        ] {
            v.push((name, state as i64));
        }
        for (name, bit) in [
            ("MQTTS_SHIM_POLL_READABLE", PollFlags::READABLE),
            ("MQTTS_SHIM_POLL_WRITABLE", PollFlags::WRITABLE),
            ("MQTTS_SHIM_POLL_HANGUP", PollFlags::HANGUP),
            ("MQTTS_SHIM_POLL_ERROR", PollFlags::ERROR),
            ("MQTTS_SHIM_CA_GLOBALSIGN_R1", CaSet::GLOBALSIGN_R1.bits()),
            (
                "MQTTS_SHIM_CA_ALIYUN_IOT_ROOT",
                CaSet::ALIYUN_IOT_ROOT.bits(),
            ),
            ("MQTTS_SHIM_CA_CUSTOM", CaSet::CUSTOM.bits()),
            (
                "MQTTS_SHIM_VERIFY_UNREADABLE",
                crate::firmware::verify::VerifyFlags::UNREADABLE,
            ),
        ] {
            v.push((name, bit.into()));
        }
        v.into_iter().map(|(n, x)| (n.to_string(), x)).collect()
    }

    #[test]
    fn rust_mirror_matches_the_c_header() {
        let mut header = header_constants();
        let mut rust = rust_constants();
        header.sort();
        rust.sort();
        assert_eq!(header.len(), 24, "header parse found {header:?}");
        assert_eq!(header, rust);
    }

    #[test]
    fn status_codes_decode() {
        assert_eq!(decode(0), Ok(0));
        assert_eq!(decode(1460), Ok(1460));
        assert_eq!(decode(-1), Err(ShimStatus::WouldBlock));
        assert_eq!(decode(-4), Err(ShimStatus::TlsVerify));
        assert_eq!(decode(-11), Err(ShimStatus::Other));
        // Values a newer shim might add, and errno leaking through by mistake.
        assert_eq!(decode(-12), Err(ShimStatus::Other));
        assert_eq!(decode(i32::MIN), Err(ShimStatus::Other));
        assert_eq!(ShimStatus::from_code(0), None);
        for s in ShimStatus::ALL {
            assert_eq!(ShimStatus::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn status_to_transport_error_table() {
        use TransportError as T;
        let expected = [
            (ShimStatus::WouldBlock, T::WouldBlock),
            (ShimStatus::Timeout, T::Timeout),
            (ShimStatus::Refused, T::TcpRefused),
            (ShimStatus::TlsVerify, T::TlsVerification),
            (ShimStatus::TlsHandshake, T::TlsHandshake),
            (ShimStatus::Dns, T::Dns),
            (ShimStatus::Closed, T::Closed),
            (ShimStatus::NetDown, T::Io),
            (ShimStatus::NoMemory, T::Io),
            (ShimStatus::Config, T::Io),
            (ShimStatus::Other, T::Io),
        ];
        assert_eq!(expected.len(), ShimStatus::ALL.len());
        for (status, error) in expected {
            assert_eq!(status.transport_error(), error, "{status:?}");
        }
    }

    #[test]
    fn net_state_and_poll_bits() {
        assert_eq!(NetState::from_code(3), NetState::Ready);
        assert_eq!(NetState::from_code(2), NetState::NoAddress);
        assert_eq!(NetState::from_code(1), NetState::NoLink);
        assert_eq!(NetState::from_code(0), NetState::NoInterface);
        assert_eq!(NetState::from_code(-8), NetState::NoInterface);
        assert_eq!(NetState::from_code(4), NetState::NoInterface);
        assert_eq!(PollFlags::from_bits(0), PollFlags::default());
        let f = PollFlags::from_bits(0x1 | 0x4 | 0x100);
        assert!(f.readable && f.hangup && !f.writable && !f.error);
        let f = PollFlags::from_bits(0xa);
        assert!(!f.readable && f.writable && !f.hangup && f.error);
    }
}
