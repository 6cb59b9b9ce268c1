//! Why the broker's certificate was rejected: Mbed TLS's verification flags, as the C shim reads
//! them, turned into causes a person can act on.
//!
//! The shim connects with `ZSOCK_TLS_PEER_VERIFY_OPTIONAL`: the handshake then completes even
//! when the certificate fails verification, and the flags stay readable
//! (`ZSOCK_TLS_CERT_VERIFY_RESULT`, i.e. `mbedtls_ssl_get_verify_result`). Under `REQUIRED` a
//! failed verification aborts the handshake and Zephyr resets the session before the flags can be
//! read, so every certificate problem looked like a generic handshake failure. Right after
//! `connect()` returns, and before anything is sent, the shim closes the socket if the flags are
//! not zero (or cannot be read) and reports `MQTTS_SHIM_TLS_VERIFY` with the flags beside it; this
//! module only explains them. The bit values are Mbed TLS's `MBEDTLS_X509_BADCERT_*`
//! (`include/mbedtls/x509.h`); [`VerifyFlags::UNREADABLE`] is the shim's own.

/// The verification flags of one handshake (`uint32_t` from `ZSOCK_TLS_CERT_VERIFY_RESULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifyFlags(u32);

impl VerifyFlags {
    /// `MBEDTLS_X509_BADCERT_EXPIRED`: the validity period has ended.
    pub const EXPIRED: u32 = 0x01;
    /// `MBEDTLS_X509_BADCERT_REVOKED`: the certificate is on a CRL.
    pub const REVOKED: u32 = 0x02;
    /// `MBEDTLS_X509_BADCERT_CN_MISMATCH`: the name does not match `TLS_HOSTNAME`.
    pub const CN_MISMATCH: u32 = 0x04;
    /// `MBEDTLS_X509_BADCERT_NOT_TRUSTED`: no chain to a trusted root.
    pub const NOT_TRUSTED: u32 = 0x08;
    /// `MBEDTLS_X509_BADCERT_MISSING`: the server sent no certificate.
    pub const MISSING: u32 = 0x40;
    /// `MBEDTLS_X509_BADCERT_SKIP_VERIFY`: verification was skipped.
    pub const SKIP_VERIFY: u32 = 0x80;
    /// `MBEDTLS_X509_BADCERT_OTHER`: another reason.
    pub const OTHER: u32 = 0x0100;
    /// `MBEDTLS_X509_BADCERT_FUTURE`: the validity period has not started (or the clock is
    /// wrong).
    pub const FUTURE: u32 = 0x0200;
    /// `MBEDTLS_X509_BADCERT_KEY_USAGE`, `_EXT_KEY_USAGE`, `_NS_CERT_TYPE`: not a server
    /// certificate.
    pub const USAGE: u32 = 0x0800 | 0x1000 | 0x2000;
    /// `MBEDTLS_X509_BADCERT_BAD_MD`, `_BAD_PK`, `_BAD_KEY`: signed with a hash, algorithm or key
    /// this build does not accept.
    pub const WEAK: u32 = 0x4000 | 0x8000 | 0x01_0000;
    /// Set by the shim, never by Mbed TLS: the result could not be read, so the peer counts as
    /// unverified.
    pub const UNREADABLE: u32 = 0x4000_0000;

    /// The flags as read.
    pub const fn from_bits(bits: u32) -> VerifyFlags {
        VerifyFlags(bits)
    }

    /// The raw value (for the log, in hex).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// No flag set: the certificate was verified.
    pub const fn is_verified(self) -> bool {
        self.0 == 0
    }

    /// The causes these flags name, most actionable first (a wrong clock explains an "expired"
    /// or "not yet valid" alike, so the date causes come first). Empty for verified flags; a
    /// flag this module does not know is [`VerifyCause::Other`].
    pub fn causes(self) -> impl Iterator<Item = VerifyCause> {
        let known = VerifyCause::ALL
            .into_iter()
            .filter(move |cause| self.0 & cause.mask() != 0);
        let unknown = self.0 & !VerifyCause::KNOWN != 0;
        known.chain(unknown.then_some(VerifyCause::Other))
    }

    /// The first of [`VerifyFlags::causes`]; `None` when verified.
    pub fn primary(self) -> Option<VerifyCause> {
        self.causes().next()
    }
}

/// One reason a broker certificate was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyCause {
    /// The result could not be read from the socket ([`VerifyFlags::UNREADABLE`]).
    Unreadable,
    /// Not valid yet: usually the device clock is not set.
    NotYetValid,
    /// Expired (or the device clock is far ahead).
    Expired,
    /// Not signed by the roots this build trusts.
    NotTrusted,
    /// Issued for another host name than `CONFIG_MQTTS_BROKER_HOST`.
    HostMismatch,
    /// Revoked.
    Revoked,
    /// The server sent no certificate.
    Missing,
    /// Not a TLS server certificate (key usage).
    WrongUsage,
    /// Signed with an algorithm, hash or key size this build does not accept.
    WeakAlgorithm,
    /// Any other flag.
    Other,
}

impl VerifyCause {
    /// The causes with their own flags, in the order [`VerifyFlags::causes`] reports them.
    const ALL: [VerifyCause; 9] = [
        VerifyCause::Unreadable,
        VerifyCause::NotYetValid,
        VerifyCause::Expired,
        VerifyCause::NotTrusted,
        VerifyCause::HostMismatch,
        VerifyCause::Revoked,
        VerifyCause::Missing,
        VerifyCause::WrongUsage,
        VerifyCause::WeakAlgorithm,
    ];

    /// Every flag some cause other than [`VerifyCause::Other`] names.
    const KNOWN: u32 = VerifyFlags::UNREADABLE
        | VerifyFlags::FUTURE
        | VerifyFlags::EXPIRED
        | VerifyFlags::NOT_TRUSTED
        | VerifyFlags::CN_MISMATCH
        | VerifyFlags::REVOKED
        | VerifyFlags::MISSING
        | VerifyFlags::USAGE
        | VerifyFlags::WEAK;

    /// The flags that name this cause.
    const fn mask(self) -> u32 {
        match self {
            VerifyCause::Unreadable => VerifyFlags::UNREADABLE,
            VerifyCause::NotYetValid => VerifyFlags::FUTURE,
            VerifyCause::Expired => VerifyFlags::EXPIRED,
            VerifyCause::NotTrusted => VerifyFlags::NOT_TRUSTED,
            VerifyCause::HostMismatch => VerifyFlags::CN_MISMATCH,
            VerifyCause::Revoked => VerifyFlags::REVOKED,
            VerifyCause::Missing => VerifyFlags::MISSING,
            VerifyCause::WrongUsage => VerifyFlags::USAGE,
            VerifyCause::WeakAlgorithm => VerifyFlags::WEAK,
            VerifyCause::Other => !VerifyCause::KNOWN,
        }
    }

    /// What to check, for the log line.
    pub fn hint(self) -> &'static str {
        match self {
            VerifyCause::Unreadable => "verification result unreadable: peer treated as unverified",
            VerifyCause::NotYetValid => "certificate not yet valid: check the clock (SNTP)",
            VerifyCause::Expired => "certificate expired (or the clock is wrong)",
            VerifyCause::NotTrusted => "not signed by a trusted root: check CONFIG_MQTTS_CA",
            VerifyCause::HostMismatch => "issued for another name: check CONFIG_MQTTS_BROKER_HOST",
            VerifyCause::Revoked => "certificate revoked",
            VerifyCause::Missing => "the broker sent no certificate",
            VerifyCause::WrongUsage => "not a TLS server certificate (key usage)",
            VerifyCause::WeakAlgorithm => "signature algorithm, hash or key not enabled here",
            VerifyCause::Other => "other verification failure",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn causes(bits: u32) -> Vec<VerifyCause> {
        VerifyFlags::from_bits(bits).causes().collect()
    }

    #[test]
    fn verified_flags_have_no_cause() {
        let ok = VerifyFlags::from_bits(0);
        assert!(ok.is_verified());
        assert_eq!(ok.primary(), None);
        assert!(causes(0).is_empty());
    }

    #[test]
    fn each_mbedtls_flag_maps_to_its_cause() {
        use VerifyCause as C;
        let table = [
            (0x01, C::Expired),
            (0x02, C::Revoked),
            (0x04, C::HostMismatch),
            (0x08, C::NotTrusted),
            (0x40, C::Missing),
            (0x0200, C::NotYetValid),
            (0x0800, C::WrongUsage),
            (0x1000, C::WrongUsage),
            (0x2000, C::WrongUsage),
            (0x4000, C::WeakAlgorithm),
            (0x8000, C::WeakAlgorithm),
            (0x01_0000, C::WeakAlgorithm),
            (VerifyFlags::UNREADABLE, C::Unreadable),
            // CRL flags, "skipped" and "other": nothing more specific to say.
            (0x10, C::Other),
            (0x20, C::Other),
            (0x80, C::Other),
            (0x0100, C::Other),
            (0x0400, C::Other),
            (0x02_0000, C::Other),
        ];
        for (bits, cause) in table {
            let flags = VerifyFlags::from_bits(bits);
            assert!(!flags.is_verified(), "{bits:#x}");
            assert_eq!(causes(bits), [cause], "{bits:#x}");
            assert_eq!(flags.primary(), Some(cause), "{bits:#x}");
        }
    }

    #[test]
    fn the_clock_is_named_before_trust_and_name() {
        // An unset clock: every certificate in the chain is "in the future", and the chain then
        // also fails; the first cause to show is the clock.
        let flags = VerifyFlags::from_bits(0x0200 | 0x08 | 0x04);
        assert_eq!(
            causes(flags.bits()),
            [
                VerifyCause::NotYetValid,
                VerifyCause::NotTrusted,
                VerifyCause::HostMismatch
            ]
        );
        assert!(flags.primary().unwrap().hint().contains("clock"));
    }

    #[test]
    fn unknown_bits_add_one_other_cause() {
        assert_eq!(
            causes(0x08 | 0x0010_0000 | 0x0020_0000),
            [VerifyCause::NotTrusted, VerifyCause::Other]
        );
        assert_eq!(causes(u32::MAX).last(), Some(&VerifyCause::Other));
        assert_eq!(causes(u32::MAX).len(), VerifyCause::ALL.len() + 1);
    }

    #[test]
    fn hints_name_the_option_to_check() {
        assert!(VerifyCause::NotTrusted.hint().contains("CONFIG_MQTTS_CA"));
        assert!(VerifyCause::HostMismatch
            .hint()
            .contains("CONFIG_MQTTS_BROKER_HOST"));
        for cause in VerifyCause::ALL {
            assert!(!cause.hint().is_empty());
        }
    }
}
