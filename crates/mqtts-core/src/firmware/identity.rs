//! The device's identity from the MCU's unique ID (Zephyr `hwinfo_get_device_id`): a stable,
//! locally administered MAC address and the self-hosted profile's default `device_id`.
//!
//! The unique ID is 12 bytes on STM32 (96-bit UID) and 8 on the RP2040 (flash unique ID); any
//! length works. Both values are a hash of the whole ID, not a slice of it: STM32 UIDs of one
//! wafer differ only in a few bytes (wafer X/Y, lot), so taking the last six bytes could collide
//! between neighbours, while a hash spreads every byte over the result.

/// Bytes of a MAC address.
pub const MAC_LEN: usize = 6;

/// Prefix of the derived `device_id`.
pub const DEVICE_ID_PREFIX: &str = "w5500-";

/// Length of the derived `device_id`: the prefix and 12 hex digits.
pub const DEVICE_ID_LEN: usize = DEVICE_ID_PREFIX.len() + 2 * MAC_LEN;

/// Why no identity can be derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// The unique ID is empty (the SoC has no hwinfo driver, or it failed).
    NoUniqueId,
    /// The unique ID is all zeros or all ones (an unprogrammed or unreadable ID): every board
    /// would get the same MAC.
    DegenerateUniqueId,
}

/// 64-bit FNV-1a of `data` with `seed` mixed in first, so the MAC and the name are different
/// hashes of the same ID (seeing one does not give the other away, and neither is the raw ID).
fn fnv1a64(seed: u8, data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in core::iter::once(&seed).chain(data) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn check(uid: &[u8]) -> Result<(), IdentityError> {
    if uid.is_empty() {
        return Err(IdentityError::NoUniqueId);
    }
    if uid.iter().all(|b| *b == 0) || uid.iter().all(|b| *b == 0xFF) {
        return Err(IdentityError::DegenerateUniqueId);
    }
    Ok(())
}

/// The MAC address of the unique ID `uid`: six bytes of its hash with the locally administered
/// bit (bit 1 of the first byte) set and the multicast bit (bit 0) cleared, as IEEE 802 asks of
/// an address not bought from the IEEE.
pub fn mac_from_unique_id(uid: &[u8]) -> Result<[u8; MAC_LEN], IdentityError> {
    check(uid)?;
    let h = fnv1a64(b'M', uid).to_be_bytes();
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&h[..MAC_LEN]);
    mac[0] = (mac[0] | 0x02) & !0x01;
    Ok(mac)
}

/// The default self-hosted `device_id` of the unique ID `uid`: `w5500-` and 12 lower-case hex
/// digits (48 bits of another hash of the ID). It matches the `device_id` rule
/// (`[A-Za-z0-9_-]`, at most 64 characters).
pub fn device_id_from_unique_id(uid: &[u8]) -> Result<DeviceIdText, IdentityError> {
    check(uid)?;
    let h = fnv1a64(b'D', uid).to_be_bytes();
    let mut out = DeviceIdText {
        buf: [0; DEVICE_ID_LEN],
    };
    out.buf[..DEVICE_ID_PREFIX.len()].copy_from_slice(DEVICE_ID_PREFIX.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in h[..MAC_LEN].iter().enumerate() {
        let at = DEVICE_ID_PREFIX.len() + 2 * i;
        out.buf[at] = HEX[usize::from(b >> 4)];
        out.buf[at + 1] = HEX[usize::from(b & 0x0F)];
    }
    Ok(out)
}

/// A derived `device_id`, held inline (no heap).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeviceIdText {
    buf: [u8; DEVICE_ID_LEN],
}

impl DeviceIdText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into `buf`.
        core::str::from_utf8(&self.buf).unwrap_or("")
    }
}

impl core::fmt::Debug for DeviceIdText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `aa:bb:cc:dd:ee:ff` of `mac` into `out`; returns the text.
pub fn format_mac<'o>(mac: &[u8; MAC_LEN], out: &'o mut [u8; 17]) -> &'o str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in mac.iter().enumerate() {
        out[3 * i] = HEX[usize::from(b >> 4)];
        out[3 * i + 1] = HEX[usize::from(b & 0x0F)];
        if i + 1 < MAC_LEN {
            out[3 * i + 2] = b':';
        }
    }
    core::str::from_utf8(&out[..]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID_A: [u8; 12] = [
        0x35, 0x00, 0x47, 0x00, 0x0d, 0x51, 0x33, 0x34, 0x38, 0x37, 0x39, 0x31,
    ];
    // The same wafer and lot, the neighbouring die: only one byte differs.
    const UID_B: [u8; 12] = [
        0x36, 0x00, 0x47, 0x00, 0x0d, 0x51, 0x33, 0x34, 0x38, 0x37, 0x39, 0x31,
    ];

    #[test]
    fn mac_is_unicast_locally_administered_and_stable() {
        for uid in [&UID_A[..], &UID_B[..], &[1u8][..], &[0xAB; 8][..]] {
            let mac = mac_from_unique_id(uid).unwrap();
            assert_eq!(mac[0] & 0x01, 0, "multicast bit must be clear: {mac:02x?}");
            assert_eq!(mac[0] & 0x02, 0x02, "locally administered bit must be set");
            assert_eq!(mac, mac_from_unique_id(uid).unwrap());
        }
    }

    #[test]
    fn neighbouring_dies_get_different_macs_and_names() {
        let (a, b) = (
            mac_from_unique_id(&UID_A).unwrap(),
            mac_from_unique_id(&UID_B).unwrap(),
        );
        assert_ne!(a, b);
        // More than the one differing byte changes: the ID is hashed, not copied.
        assert!(a.iter().zip(&b).filter(|(x, y)| x != y).count() >= 3);
        assert_ne!(
            device_id_from_unique_id(&UID_A).unwrap(),
            device_id_from_unique_id(&UID_B).unwrap()
        );
    }

    #[test]
    fn known_vector() {
        // FNV-1a 64 of b"M" then 0x01, computed by hand from the published FNV constants:
        // offset basis cbf29ce484222325, prime 100000001b3.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in [b'M', 0x01] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        let want = h.to_be_bytes();
        let mac = mac_from_unique_id(&[0x01]).unwrap();
        assert_eq!(mac[1..], want[1..6]);
        assert_eq!(mac[0], (want[0] | 0x02) & !0x01);
    }

    #[test]
    fn device_id_is_valid_for_the_self_hosted_rule() {
        let id = device_id_from_unique_id(&UID_A).unwrap();
        let s = id.as_str();
        assert_eq!(s.len(), DEVICE_ID_LEN);
        assert!(s.starts_with(DEVICE_ID_PREFIX));
        assert!(s[DEVICE_ID_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        #[cfg(feature = "selfhosted")]
        assert!(crate::selfhosted::is_device_id(s));
        // The name is not the MAC in other clothes.
        let mac = mac_from_unique_id(&UID_A).unwrap();
        let mut buf = [0u8; 17];
        let mac_text = format_mac(&mac, &mut buf).replace(':', "");
        assert_ne!(&s[DEVICE_ID_PREFIX.len()..], &mac_text[..]);
    }

    #[test]
    fn degenerate_ids_are_refused() {
        assert_eq!(mac_from_unique_id(&[]), Err(IdentityError::NoUniqueId));
        assert_eq!(
            mac_from_unique_id(&[0; 12]),
            Err(IdentityError::DegenerateUniqueId)
        );
        assert_eq!(
            device_id_from_unique_id(&[0xFF; 8]),
            Err(IdentityError::DegenerateUniqueId)
        );
    }

    #[test]
    fn mac_text() {
        let mut buf = [0u8; 17];
        assert_eq!(
            format_mac(&[0x02, 0x57, 0x35, 0x00, 0xab, 0xff], &mut buf),
            "02:57:35:00:ab:ff"
        );
    }
}
