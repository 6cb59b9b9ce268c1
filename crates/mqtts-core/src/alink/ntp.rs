//! Time over MQTT.
//!
//! The device publishes `{"deviceSendTime":"1571724098000"}` (its own clock, ms) on
//! `/ext/ntp/{pk}/{dn}/request`; the cloud answers on `/ext/ntp/{pk}/{dn}/response` with
//! `{"deviceSendTime":"1571724098000","serverRecvTime":"1571724098110","serverSendTime":"1571724098115"}`
//! (values are accepted as strings of digits or as JSON integers). When the response arrives at
//! device time `deviceRecvTime`, the current UTC time in ms is
//! `(serverRecvTime + serverSendTime + deviceRecvTime - deviceSendTime) / 2`.

use super::{write_json, BufferTooSmall, MAX_MEMBERS};
use crate::json::{self, Scalar};

/// An NTP response is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtpError {
    /// Not a JSON object.
    MalformedJson,
    /// This field is absent or not a non-negative integer (string or number).
    BadField(&'static str),
    /// The times contradict each other (response before request, server sent before it received,
    /// or the server took longer than the whole round trip).
    Inconsistent,
    /// The sum does not fit in `u64`.
    Overflow,
}

/// The three times of an NTP response, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpResponse {
    /// The device's send time, echoed (compare it with the last request to drop stale responses).
    pub device_send_ms: u64,
    /// Server time when the request arrived (UTC ms).
    pub server_recv_ms: u64,
    /// Server time when the response left (UTC ms).
    pub server_send_ms: u64,
}

/// Writes the request `{"deviceSendTime":"…"}` for device time `device_send_ms`.
pub fn write_ntp_request(device_send_ms: u64, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        device_send_time: &'a str,
    }
    let mut digits: heapless::String<20> = heapless::String::new();
    crate::json::push_decimal(&mut digits, device_send_ms).map_err(|_| BufferTooSmall)?;
    write_json(
        &Request {
            device_send_time: &digits,
        },
        out,
    )
}

fn field(obj: &json::Object<'_, MAX_MEMBERS>, name: &'static str) -> Result<u64, NtpError> {
    match obj.get(name) {
        Some(Scalar::UInt(n)) => Ok(n),
        Some(Scalar::Str(s)) => json::parse_u64(s.as_bytes()).ok_or(NtpError::BadField(name)),
        _ => Err(NtpError::BadField(name)),
    }
}

impl NtpResponse {
    /// Parses a response payload.
    pub fn parse(payload: &[u8]) -> Result<NtpResponse, NtpError> {
        let mut obj = json::Object::<MAX_MEMBERS>::new();
        json::parse_object_into(payload, None, &mut obj).map_err(|_| NtpError::MalformedJson)?;
        Ok(NtpResponse {
            device_send_ms: field(&obj, "deviceSendTime")?,
            server_recv_ms: field(&obj, "serverRecvTime")?,
            server_send_ms: field(&obj, "serverSendTime")?,
        })
    }

    /// UTC in ms at device time `device_recv_ms` (same clock as `device_send_ms`):
    /// `(serverRecv + serverSend + deviceRecv - deviceSend) / 2`, rounded down.
    pub fn utc_ms(&self, device_recv_ms: u64) -> Result<u64, NtpError> {
        let round_trip = device_recv_ms
            .checked_sub(self.device_send_ms)
            .ok_or(NtpError::Inconsistent)?;
        let server_time = self
            .server_send_ms
            .checked_sub(self.server_recv_ms)
            .ok_or(NtpError::Inconsistent)?;
        if server_time > round_trip {
            return Err(NtpError::Inconsistent);
        }
        let sum = self
            .server_recv_ms
            .checked_add(self.server_send_ms)
            .and_then(|s| s.checked_add(round_trip))
            .ok_or(NtpError::Overflow)?;
        Ok(sum / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_payload_exact() {
        let mut buf = [0u8; 64];
        let n = write_ntp_request(1_571_724_098_000, &mut buf).unwrap();
        assert_eq!(&buf[..n], br#"{"deviceSendTime":"1571724098000"}"#);
        let n = write_ntp_request(0, &mut buf).unwrap();
        assert_eq!(&buf[..n], br#"{"deviceSendTime":"0"}"#);
        assert_eq!(write_ntp_request(1, &mut buf[..10]), Err(BufferTooSmall));
    }

    #[test]
    fn parses_strings_and_numbers() {
        let strings = br#"{"deviceSendTime":"1000","serverRecvTime":"1571724098110","serverSendTime":"1571724098115"}"#;
        let numbers = br#"{"deviceSendTime":1000,"serverRecvTime":1571724098110,"serverSendTime":"1571724098115"}"#;
        let expected = NtpResponse {
            device_send_ms: 1000,
            server_recv_ms: 1_571_724_098_110,
            server_send_ms: 1_571_724_098_115,
        };
        assert_eq!(NtpResponse::parse(strings), Ok(expected));
        assert_eq!(NtpResponse::parse(numbers), Ok(expected));
        // Device clock 1000 -> 1200: 200 ms round trip, 5 ms of it in the server.
        // (110 + 115 + 1200 - 1000) / 2 => 1571724098212 (rounded down from .5).
        assert_eq!(expected.utc_ms(1200), Ok(1_571_724_098_212));
    }

    #[test]
    fn bad_responses() {
        assert_eq!(NtpResponse::parse(b"{"), Err(NtpError::MalformedJson));
        assert_eq!(
            NtpResponse::parse(br#"{"deviceSendTime":"1","serverRecvTime":"2"}"#),
            Err(NtpError::BadField("serverSendTime"))
        );
        assert_eq!(
            NtpResponse::parse(
                br#"{"deviceSendTime":"-1","serverRecvTime":"2","serverSendTime":"3"}"#
            ),
            Err(NtpError::BadField("deviceSendTime"))
        );
        assert_eq!(
            NtpResponse::parse(
                br#"{"deviceSendTime":1.5,"serverRecvTime":"2","serverSendTime":"3"}"#
            ),
            Err(NtpError::BadField("deviceSendTime"))
        );
        assert_eq!(
            NtpResponse::parse(br#"{"deviceSendTime":"1","serverRecvTime":"99999999999999999999","serverSendTime":"3"}"#),
            Err(NtpError::BadField("serverRecvTime"))
        );
    }

    #[test]
    fn arithmetic_checks() {
        let r = |d, sr, ss| NtpResponse {
            device_send_ms: d,
            server_recv_ms: sr,
            server_send_ms: ss,
        };
        // Response "before" the request: device clock went backwards.
        assert_eq!(r(100, 5, 5).utc_ms(99), Err(NtpError::Inconsistent));
        // Server sent before it received.
        assert_eq!(r(0, 10, 9).utc_ms(100), Err(NtpError::Inconsistent));
        // Server time longer than the round trip.
        assert_eq!(r(0, 10, 60).utc_ms(40), Err(NtpError::Inconsistent));
        // Overflow in either addition.
        assert_eq!(
            r(0, u64::MAX / 2 + 1, u64::MAX / 2 + 1).utc_ms(0),
            Err(NtpError::Overflow)
        );
        assert_eq!(
            r(0, u64::MAX / 2, u64::MAX / 2).utc_ms(2),
            Err(NtpError::Overflow)
        );
        // Largest values that fit.
        assert_eq!(r(0, u64::MAX / 2, u64::MAX / 2).utc_ms(1), Ok(u64::MAX / 2));
        assert_eq!(r(u64::MAX, 7, 7).utc_ms(u64::MAX), Ok(7));
    }
}
