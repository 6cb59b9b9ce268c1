// SPDX-License-Identifier: Apache-2.0

//! Makes Kconfig booleans (`#[cfg(CONFIG_MQTTS_TLS)]`) and devicetree nodes
//! (`#[cfg(dt = "aliases::relay0")]`) visible to `cfg` in the application crate. Numeric and
//! string Kconfig values come from `zephyr::kconfig` instead.

fn main() {
    zephyr_build::export_kconfig_bool_options();
    zephyr_build::dt_cfgs();
}
