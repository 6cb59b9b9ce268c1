//! Which embedded root certificates a connection trusts.
//!
//! Alibaba Cloud IoT serves two chains: ports 1883 and 443 (legacy and instance endpoints)
//! chain to GlobalSign Root CA R1 (expires 2028-01-28); port 8883 on instance endpoints chains
//! to Alibaba's own "Aliyun IoT Root CA" (expires 2053-07-04). Trusting only the root the port
//! needs keeps the accepted set small and saves parsing the other root (Mbed TLS heap) on every
//! handshake. A self-hosted broker uses the CA file of the build.

use crate::config::Profile;

/// Alibaba's TLS port with the Aliyun IoT Root CA chain.
pub const ALIYUN_IOT_ROOT_PORT: u16 = 8883;
/// Alibaba ports with the GlobalSign Root CA R1 chain.
pub const GLOBALSIGN_R1_PORTS: [u16; 2] = [1883, 443];

/// The build's CA option (`CONFIG_MQTTS_CA_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaChoice {
    /// Alibaba roots chosen by port (`CONFIG_MQTTS_CA_ALIYUN_BY_PORT`): 8883 the Aliyun IoT
    /// Root CA, 1883/443 GlobalSign R1, any other port both.
    ByPort,
    /// Both Alibaba roots (`CONFIG_MQTTS_CA_ALIYUN_BOTH`).
    AliyunBoth,
    /// GlobalSign Root CA R1 only.
    GlobalSignR1,
    /// Aliyun IoT Root CA only.
    AliyunIotRoot,
    /// The CA file of a self-hosted broker.
    Custom,
}

/// A set of embedded roots; the bits are the shim's `MQTTS_SHIM_CA_*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaSet(u8);

impl CaSet {
    /// No root.
    pub const EMPTY: CaSet = CaSet(0);
    /// GlobalSign Root CA R1.
    pub const GLOBALSIGN_R1: CaSet = CaSet(0x1);
    /// Aliyun IoT Root CA.
    pub const ALIYUN_IOT_ROOT: CaSet = CaSet(0x2);
    /// The self-hosted broker's CA.
    pub const CUSTOM: CaSet = CaSet(0x4);

    /// The bit mask passed to `mqtts_shim_connect`.
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }

    /// The set with these `MQTTS_SHIM_CA_*` bits; unknown bits are dropped.
    pub const fn from_bits(bits: u32) -> CaSet {
        CaSet((bits & 0x7) as u8)
    }

    /// Both sets.
    pub const fn union(self, other: CaSet) -> CaSet {
        CaSet(self.0 | other.0)
    }

    /// Whether every root of `other` is in this set.
    pub const fn contains(self, other: CaSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set has no root.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of roots.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }
}

/// The roots a connection to `port` trusts under `choice`. An explicit choice is taken as is;
/// [`CaChoice::ByPort`] picks Alibaba's root for the port (both when the port says nothing),
/// and for a self-hosted profile means the build's own CA.
pub fn trusted_cas(profile: Profile, port: u16, choice: CaChoice) -> CaSet {
    match choice {
        CaChoice::Custom => CaSet::CUSTOM,
        CaChoice::GlobalSignR1 => CaSet::GLOBALSIGN_R1,
        CaChoice::AliyunIotRoot => CaSet::ALIYUN_IOT_ROOT,
        CaChoice::AliyunBoth => CaSet::GLOBALSIGN_R1.union(CaSet::ALIYUN_IOT_ROOT),
        CaChoice::ByPort => match profile {
            Profile::SelfHosted => CaSet::CUSTOM,
            Profile::Aliyun if port == ALIYUN_IOT_ROOT_PORT => CaSet::ALIYUN_IOT_ROOT,
            Profile::Aliyun if GLOBALSIGN_R1_PORTS.contains(&port) => CaSet::GLOBALSIGN_R1,
            Profile::Aliyun => CaSet::GLOBALSIGN_R1.union(CaSet::ALIYUN_IOT_ROOT),
        },
    }
}

/// The roots the build must embed so that [`trusted_cas`] can pick from them at run time
/// (mirrors the CMake selection: by-port embeds both Alibaba roots).
pub fn embedded_cas(profile: Profile, choice: CaChoice) -> CaSet {
    match (choice, profile) {
        (CaChoice::ByPort, Profile::Aliyun) => CaSet::GLOBALSIGN_R1.union(CaSet::ALIYUN_IOT_ROOT),
        (choice, profile) => trusted_cas(profile, 0, choice),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: CaSet = CaSet::GLOBALSIGN_R1.union(CaSet::ALIYUN_IOT_ROOT);

    #[test]
    fn aliyun_by_port() {
        let a = Profile::Aliyun;
        assert_eq!(
            trusted_cas(a, 8883, CaChoice::ByPort),
            CaSet::ALIYUN_IOT_ROOT
        );
        assert_eq!(trusted_cas(a, 1883, CaChoice::ByPort), CaSet::GLOBALSIGN_R1);
        assert_eq!(trusted_cas(a, 443, CaChoice::ByPort), CaSet::GLOBALSIGN_R1);
        // Unsure (a proxy, a new port): both.
        assert_eq!(trusted_cas(a, 8884, CaChoice::ByPort), BOTH);
        assert_eq!(trusted_cas(a, 1, CaChoice::ByPort), BOTH);
    }

    #[test]
    fn explicit_choices_ignore_the_port() {
        for profile in [Profile::Aliyun, Profile::SelfHosted] {
            for port in [443, 1883, 8883] {
                assert_eq!(trusted_cas(profile, port, CaChoice::AliyunBoth), BOTH);
                assert_eq!(
                    trusted_cas(profile, port, CaChoice::GlobalSignR1),
                    CaSet::GLOBALSIGN_R1
                );
                assert_eq!(
                    trusted_cas(profile, port, CaChoice::AliyunIotRoot),
                    CaSet::ALIYUN_IOT_ROOT
                );
                assert_eq!(trusted_cas(profile, port, CaChoice::Custom), CaSet::CUSTOM);
            }
        }
        assert_eq!(
            trusted_cas(Profile::SelfHosted, 8883, CaChoice::ByPort),
            CaSet::CUSTOM
        );
    }

    #[test]
    fn every_trusted_root_is_embedded() {
        let choices = [
            CaChoice::ByPort,
            CaChoice::AliyunBoth,
            CaChoice::GlobalSignR1,
            CaChoice::AliyunIotRoot,
            CaChoice::Custom,
        ];
        for profile in [Profile::Aliyun, Profile::SelfHosted] {
            for choice in choices {
                let embedded = embedded_cas(profile, choice);
                assert!(!embedded.is_empty());
                for port in [1, 443, 1883, 8883, 65535] {
                    let trusted = trusted_cas(profile, port, choice);
                    assert!(!trusted.is_empty());
                    assert!(embedded.contains(trusted), "{profile:?} {choice:?} {port}");
                }
            }
        }
        assert_eq!(embedded_cas(Profile::Aliyun, CaChoice::ByPort), BOTH);
        assert_eq!(embedded_cas(Profile::Aliyun, CaChoice::ByPort).len(), 2);
    }

    #[test]
    fn set_operations() {
        assert_eq!(BOTH.bits(), 0x3);
        assert_eq!(CaSet::from_bits(0x3), BOTH);
        assert_eq!(CaSet::from_bits(0xfff4), CaSet::CUSTOM);
        assert!(BOTH.contains(CaSet::GLOBALSIGN_R1));
        assert!(!CaSet::GLOBALSIGN_R1.contains(BOTH));
        assert!(CaSet::EMPTY.is_empty());
        assert_eq!(CaSet::CUSTOM.len(), 1);
        assert!(BOTH.contains(CaSet::EMPTY));
        assert_eq!(CaSet::CUSTOM.union(CaSet::CUSTOM), CaSet::CUSTOM);
    }
}
