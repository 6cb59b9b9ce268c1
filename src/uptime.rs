// SPDX-License-Identifier: Apache-2.0

//! The one clock the loops schedule by: milliseconds since boot.

/// Milliseconds since boot (Zephyr's `k_uptime_get`, never negative).
pub fn uptime_ms() -> u64 {
    u64::try_from(zephyr::sys::uptime_get()).unwrap_or(0)
}
