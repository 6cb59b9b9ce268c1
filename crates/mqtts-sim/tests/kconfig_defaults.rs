//! The TOML file and the firmware's Kconfig menu share option names and defaults: every
//! numeric/bool option of `DeviceConfig` has a `CONFIG_MQTTS_<NAME>` symbol whose
//! unconditional default equals the value a TOML file gets when it leaves the key out. Also
//! checks that the committed example files are valid.

use mqtts_core::config::DeviceConfig;
use mqtts_sim::host_config::HostConfig;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The last `default` line of `config MQTTS_<name>` (the unconditional one).
fn kconfig_default(kconfig: &str, name: &str) -> String {
    let header = format!("config MQTTS_{}", name.to_ascii_uppercase());
    let block: Vec<&str> = kconfig
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| {
            !l.starts_with("config ") && !l.starts_with("endmenu") && !l.starts_with("choice")
        })
        .collect();
    let default = block
        .iter()
        .filter_map(|l| l.trim().strip_prefix("default "))
        .rfind(|d| !d.contains(" if "))
        .unwrap_or_else(|| panic!("{header}: no unconditional default"));
    default.trim().to_string()
}

#[test]
fn toml_defaults_are_the_kconfig_defaults() {
    let kconfig = std::fs::read_to_string(root().join("Kconfig")).unwrap();
    let d = DeviceConfig::new();
    let yn = |b: bool| if b { "y" } else { "n" }.to_string();
    let expected = [
        ("broker_port", d.broker_port.to_string()),
        ("tls", yn(d.tls)),
        ("tls_peer_verify", yn(d.tls_peer_verify)),
        ("keepalive_s", d.keepalive_s.to_string()),
        ("ping_timeout_ms", d.ping_timeout_ms.to_string()),
        ("connect_timeout_ms", d.connect_timeout_ms.to_string()),
        ("inflight_max", d.inflight_max.to_string()),
        ("backoff_min_ms", d.backoff_min_ms.to_string()),
        ("backoff_max_ms", d.backoff_max_ms.to_string()),
        ("telemetry_period_s", d.telemetry_period_s.to_string()),
        ("clean_session", yn(d.clean_session)),
        ("aliyun_sign_method", format!("{:?}", d.aliyun_sign_method)),
    ];
    for (name, value) in expected {
        assert_eq!(kconfig_default(&kconfig, name), value, "default of {name}");
    }
}

#[test]
fn example_files_are_valid() {
    for name in ["aliyun.toml", "mosquitto.toml"] {
        let path = root().join("examples").join(name);
        let config = HostConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        config
            .device_config()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        config.switch_names().unwrap();
        assert!(!config.ca_files().is_empty(), "{name} verifies the broker");
    }
}
