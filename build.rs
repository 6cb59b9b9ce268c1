// SPDX-License-Identifier: Apache-2.0

//! Makes Kconfig booleans (`#[cfg(CONFIG_MQTTS_TLS)]`) and devicetree nodes
//! (`#[cfg(dt = "aliases::relay0")]`) visible to `cfg` in the application crate. Numeric and
//! string Kconfig values come from `zephyr::kconfig` instead.
//!
//! Rerun lines: zephyr-build (zephyr-lang-rust ab3e546) prints `cargo-rerun-if-changed=` (no
//! colon, so cargo ignores it) for the `.config` and no rerun line at all for the devicetree, so
//! after a configuration change an incremental build would keep the old cfgs. The files
//! zephyr-lang-rust's CMake names in the environment (`DOTCONFIG`, `ZEPHYR_DTS`,
//! `BINARY_DIR_INCLUDE_GENERATED`) are listed here. Listing any file turns off cargo's default
//! "rerun when any file of the package changes", so this script lists itself as well.

use std::env;
use std::path::Path;

/// Tells cargo to rerun this script when the file named by `var` (or `var` itself) changes.
fn rerun_if_file_in_env_changes(var: &str, file_in_dir: Option<&str>) {
    println!("cargo:rerun-if-env-changed={var}");
    if let Some(value) = env::var_os(var) {
        let path = match file_in_dir {
            Some(name) => Path::new(&value).join(name),
            None => Path::new(&value).to_path_buf(),
        };
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The Kconfig result: CONFIG_* cfgs.
    rerun_if_file_in_env_changes("DOTCONFIG", None);
    // The final devicetree and the header generated from it: `dt = ...` cfgs.
    rerun_if_file_in_env_changes("ZEPHYR_DTS", None);
    rerun_if_file_in_env_changes(
        "BINARY_DIR_INCLUDE_GENERATED",
        Some("devicetree_generated.h"),
    );

    zephyr_build::export_kconfig_bool_options();
    zephyr_build::dt_cfgs();
}
