//! 64-bit division by a small constant in 32-bit steps. Cortex-M has no 64-bit divide, and the
//! compiler's `u64 / u64` pulls in about 0.9 KB of compiler-builtins (`__aeabi_uldivmod`); the
//! device only ever divides 64-bit times and numbers by 10 and 1000.

/// `(n / d, n % d)` for `d` in `1..=65536`, by long division in 16-bit digits: each step divides
/// a value below `d * 2^16 <= 2^32`, so only 32-bit division is used. `d == 0` gives `(0, 0)`
/// (callers pass constants; no panic either way).
pub(crate) fn div_rem(n: u64, d: u32) -> (u64, u32) {
    if d == 0 || d > 1 << 16 {
        return (0, 0);
    }
    let mut q = 0u64;
    let mut r = 0u32;
    for shift in [48u32, 32, 16, 0] {
        // r < d <= 2^16, so this fits in 32 bits.
        let cur = r << 16 | ((n >> shift) as u32 & 0xFFFF);
        q = q << 16 | u64::from(cur / d);
        r = cur % d;
    }
    (q, r)
}

#[cfg(test)]
mod tests {
    use super::div_rem;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        for n in [
            0,
            1,
            9,
            10,
            999,
            1000,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            for d in [1u32, 10, 1000, 65_535, 65_536] {
                assert_eq!(div_rem(n, d), (n / u64::from(d), (n % u64::from(d)) as u32));
            }
        }
        assert_eq!(div_rem(5, 0), (0, 0));
        assert_eq!(div_rem(5, 65_537), (0, 0));
    }

    proptest! {
        #[test]
        fn matches_u64_division(n in any::<u64>(), d in 1u32..=65_536) {
            prop_assert_eq!(div_rem(n, d), (n / u64::from(d), (n % u64::from(d)) as u32));
        }
    }
}
