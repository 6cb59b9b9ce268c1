//! One source of truth for the options: the core (`DeviceConfig::new` for defaults, its
//! `RANGES` table, which `DeviceConfig::validate` checks against, for numeric rules). This
//! test holds the firmware's `Kconfig` menu (`range`/`default` of every `config MQTTS_*`),
//! the CMake/`BUILD_ASSERT` checks for what Kconfig cannot express, and the docs' tables
//! (README, docs/host-runner.md, docs/firmware.md, the module docs of `config.rs`) to it.
//! Also checks that the committed example files are valid.

use mqtts_core::config::{DeviceConfig, OptionRange, Profile, RANGES};
use mqtts_sim::host_config::HostConfig;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One `config MQTTS_*` block of the Kconfig file.
#[derive(Debug, Default)]
struct Symbol {
    /// Without the `MQTTS_` prefix, upper case.
    name: String,
    /// `int`, `bool`, `string`.
    kind: String,
    /// `range LO HI [if COND]`, in file order.
    ranges: Vec<(i64, i64, Option<String>)>,
    /// `default VALUE [if COND]`, in file order.
    defaults: Vec<(String, Option<String>)>,
}

impl Symbol {
    /// The unconditional default (the last one without `if`).
    fn default_value(&self) -> &str {
        self.defaults
            .iter()
            .rfind(|(_, cond)| cond.is_none())
            .map(|(v, _)| v.as_str())
            .unwrap_or_else(|| panic!("MQTTS_{}: no unconditional default", self.name))
    }

    /// The unconditional default as a number, checked against the unconditional range.
    fn int_default(&self) -> i64 {
        let d = self.default_value().parse().unwrap_or_else(|_| {
            panic!(
                "MQTTS_{}: default {:?} not a number",
                self.name,
                self.default_value()
            )
        });
        let (lo, hi, _) = self
            .ranges
            .iter()
            .find(|r| r.2.is_none())
            .unwrap_or_else(|| panic!("MQTTS_{}: no unconditional range", self.name));
        assert!(
            (*lo..=*hi).contains(&d),
            "MQTTS_{}: default {d} outside its range",
            self.name
        );
        d
    }
}

/// Splits `TEXT [if COND]`.
fn split_if(text: &str) -> (String, Option<String>) {
    match text.split_once(" if ") {
        Some((v, c)) => (v.trim().to_string(), Some(c.trim().to_string())),
        None => (text.trim().to_string(), None),
    }
}

/// Every `config MQTTS_*` block. A block ends at the next line that starts in column 0.
fn parse_kconfig(text: &str) -> Vec<Symbol> {
    let mut symbols = Vec::new();
    let mut current: Option<Symbol> = None;
    let mut in_help = false;
    for line in text.lines() {
        if !line.is_empty() && !line.starts_with([' ', '\t']) {
            symbols.extend(current.take());
            in_help = false;
            if let Some(name) = line.strip_prefix("config MQTTS_") {
                current = Some(Symbol {
                    name: name.trim().to_string(),
                    ..Symbol::default()
                });
            }
            continue;
        }
        let Some(sym) = current.as_mut() else {
            continue;
        };
        let l = line.trim();
        if in_help {
            continue;
        }
        if l == "help" {
            in_help = true;
        } else if let Some(rest) = l.strip_prefix("range ") {
            let (bounds, cond) = split_if(rest);
            let mut it = bounds.split_whitespace().map(|n| {
                n.parse::<i64>()
                    .unwrap_or_else(|_| panic!("MQTTS_{}: range {rest:?}", sym.name))
            });
            let (lo, hi) = (it.next().unwrap(), it.next().unwrap());
            assert!(
                lo <= hi && it.next().is_none(),
                "MQTTS_{}: range {rest:?}",
                sym.name
            );
            sym.ranges.push((lo, hi, cond));
        } else if let Some(rest) = l.strip_prefix("default ") {
            sym.defaults.push(split_if(rest));
        } else if let Some(kind) = ["int", "bool", "string", "hex"]
            .into_iter()
            .find(|k| l == *k || l.starts_with(&format!("{k} ")))
        {
            sym.kind = kind.to_string();
        }
    }
    symbols.extend(current);
    symbols
}

fn kconfig() -> Vec<Symbol> {
    let symbols = parse_kconfig(&read("Kconfig"));
    assert!(
        symbols.len() > 40,
        "Kconfig parse found only {}",
        symbols.len()
    );
    symbols
}

fn symbol<'a>(symbols: &'a [Symbol], field: &str) -> &'a Symbol {
    let name = field.to_ascii_uppercase();
    symbols
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("Kconfig has no config MQTTS_{name}"))
}

/// The core's default of numeric option `field`.
fn core_default(field: &str) -> u32 {
    let d = DeviceConfig::new();
    match field {
        "broker_port" => d.broker_port.into(),
        "keepalive_s" => d.keepalive_s.into(),
        "ping_timeout_ms" => d.ping_timeout_ms,
        "connect_timeout_ms" => d.connect_timeout_ms,
        "inflight_max" => d.inflight_max.into(),
        "backoff_min_ms" => d.backoff_min_ms,
        "backoff_max_ms" => d.backoff_max_ms,
        "telemetry_period_s" => d.telemetry_period_s,
        _ => panic!("no core default for {field}"),
    }
}

/// Integer options that only the firmware has (thread, buffer, network settings). Every int
/// `config MQTTS_*` must be here or in the core's `RANGES`, so a new option gets classified.
const FIRMWARE_ONLY: [&str; 12] = [
    "SEC_TAG_BASE",
    "RX_BUFFER_SIZE",
    "TX_BUFFER_SIZE",
    "STORE_BUFFER_SIZE",
    "NET_WAIT_TIMEOUT_S",
    "SNTP_TIMEOUT_MS",
    "SNTP_RESYNC_S",
    "WORKER_STACK_SIZE",
    "WORKER_PRIORITY",
    "APP_PRIORITY",
    "APP_STACK_BASE",
    "LOG_LEVEL",
];

/// The Kconfig `range` line a core rule needs: Kconfig has no "0 or MIN..MAX", so such a rule
/// becomes `0..MAX` (CMake rejects the gap, see `gaps_fail_the_build`).
fn kconfig_range(r: &OptionRange) -> (i64, i64) {
    let lo = if r.zero_is_off { 0 } else { r.min };
    (lo.into(), r.max.into())
}

#[test]
fn kconfig_ranges_are_the_core_ranges() {
    let symbols = kconfig();
    let mut fields: Vec<&str> = RANGES.iter().map(|r| r.field).collect();
    fields.dedup();
    for field in fields {
        let sym = symbol(&symbols, field);
        assert_eq!(sym.kind, "int", "MQTTS_{}", sym.name);
        let rules: Vec<&OptionRange> = RANGES.iter().filter(|r| r.field == field).collect();
        // Kconfig applies the first range whose condition holds: profile-specific ranges
        // come first, the unconditional one (every other profile) last.
        let mut expected: Vec<(i64, i64, Option<String>)> = Vec::new();
        let mut fallback = None;
        for r in &rules {
            let (lo, hi) = kconfig_range(r);
            match r.profile {
                Some(Profile::Aliyun) => {
                    expected.push((lo, hi, Some("MQTTS_PROFILE_ALIYUN".to_string())))
                }
                // Self-hosted is the only other profile: its range is the fallback.
                Some(Profile::SelfHosted) | None => {
                    assert!(fallback.is_none(), "{field}: two fallback ranges");
                    fallback = Some((lo, hi, None));
                }
            }
        }
        expected.extend(fallback);
        assert_eq!(sym.ranges, expected, "range lines of MQTTS_{}", sym.name);
        // The default is allowed for every profile.
        let d = core_default(field);
        for r in &rules {
            assert!(r.allows(d), "{field}: default {d} not allowed by {r:?}");
        }
    }
}

#[test]
fn every_int_option_has_a_range_and_is_classified() {
    let symbols = kconfig();
    let ints: Vec<&Symbol> = symbols.iter().filter(|s| s.kind == "int").collect();
    for sym in &ints {
        assert!(
            !sym.ranges.is_empty(),
            "MQTTS_{}: int without range",
            sym.name
        );
        sym.int_default();
        let core = RANGES
            .iter()
            .any(|r| r.field.to_ascii_uppercase() == sym.name);
        let firmware = FIRMWARE_ONLY.contains(&sym.name.as_str());
        assert!(
            core ^ firmware,
            "MQTTS_{}: must be in exactly one of RANGES and FIRMWARE_ONLY",
            sym.name
        );
    }
    for name in FIRMWARE_ONLY {
        assert!(
            ints.iter().any(|s| s.name == name),
            "MQTTS_{name} is not an int option"
        );
    }
}

/// Core rules Kconfig cannot express fail the build with a message naming the option.
#[test]
fn gaps_fail_the_build() {
    let cmake = read("CMakeLists.txt");
    let shim = read("src/socket_shim.c");
    for r in RANGES.iter().filter(|r| r.zero_is_off) {
        let sym = format!("CONFIG_MQTTS_{}", r.field.to_ascii_uppercase());
        let cmake_check = format!("{sym} GREATER 0 AND {sym} LESS {}", r.min);
        assert!(
            cmake.contains(&cmake_check),
            "CMakeLists.txt lacks `{cmake_check}`"
        );
        let assert_check = format!("{sym} == 0 || {sym} >= {}", r.min);
        assert!(
            shim.contains(&assert_check),
            "socket_shim.c lacks `{assert_check}`"
        );
    }
    // backoff_max_ms >= backoff_min_ms.
    assert!(cmake.contains("CONFIG_MQTTS_BACKOFF_MIN_MS GREATER CONFIG_MQTTS_BACKOFF_MAX_MS"));
    assert!(shim.contains("CONFIG_MQTTS_BACKOFF_MIN_MS <= CONFIG_MQTTS_BACKOFF_MAX_MS"));
}

#[test]
fn toml_defaults_are_the_kconfig_defaults() {
    let symbols = kconfig();
    let d = DeviceConfig::new();
    let yn = |b: bool| if b { "y" } else { "n" }.to_string();
    let mut expected = vec![
        ("tls", yn(d.tls)),
        ("tls_peer_verify", yn(d.tls_peer_verify)),
        ("clean_session", yn(d.clean_session)),
        ("aliyun_sign_method", format!("{:?}", d.aliyun_sign_method)),
    ];
    for r in RANGES {
        expected.push((r.field, core_default(r.field).to_string()));
    }
    for (name, value) in expected {
        assert_eq!(
            symbol(&symbols, name).default_value(),
            value,
            "default of {name}"
        );
    }
}

/// The cells of the table row whose first cell lists `name` (`` `a`, `b` `` rows included),
/// with the position of `name` in that cell.
fn row<'a>(table_text: &'a str, name: &str) -> Option<(Vec<&'a str>, usize)> {
    let tick = format!("`{name}`");
    table_text.lines().find_map(|line| {
        let line = line.trim_start_matches("//!").trim();
        let cells: Vec<&str> = line.strip_prefix('|')?.split('|').map(str::trim).collect();
        let pos = cells.first()?.split(", ").position(|n| n == tick)?;
        Some((cells, pos))
    })
}

/// The default a doc table gives `name` (`default_col`: index of the default column).
fn doc_default<'a>(
    text: &'a str,
    doc: &str,
    name: &str,
    default_col: usize,
) -> (&'a str, Vec<&'a str>) {
    let (cells, pos) = row(text, name).unwrap_or_else(|| panic!("{doc}: no row for `{name}`"));
    let defaults: Vec<&str> = cells[default_col].split(", ").collect();
    let default = defaults
        .get(pos)
        .copied()
        .unwrap_or_else(|| panic!("{doc}: row of `{name}` has no default for it: {cells:?}"));
    (default, cells)
}

/// README's configuration table, docs/host-runner.md's TOML table and the module docs table
/// of config.rs give the core's defaults and ranges.
#[test]
fn doc_tables_give_the_core_defaults_and_ranges() {
    let readme = read("README.md");
    let readme = &readme[readme
        .find("## Configuration")
        .expect("README: ## Configuration")..];
    let host = read("docs/host-runner.md");
    let core_docs = read("crates/mqtts-core/src/config.rs");
    let d = DeviceConfig::new();
    for (doc, text, default_col) in [
        ("README.md", readme, 1),
        ("docs/host-runner.md", host.as_str(), 1),
        ("config.rs module docs", core_docs.as_str(), 2),
    ] {
        let tf = |b: bool| b.to_string();
        for (name, value) in [
            ("tls", tf(d.tls)),
            ("tls_peer_verify", tf(d.tls_peer_verify)),
            ("clean_session", tf(d.clean_session)),
            ("aliyun_sign_method", format!("`{}`", d.aliyun_sign_method)),
        ] {
            assert_eq!(
                doc_default(text, doc, name, default_col).0,
                value,
                "{doc}: {name}"
            );
        }
        for r in RANGES {
            let (default, cells) = doc_default(text, doc, r.field, default_col);
            assert_eq!(
                default,
                core_default(r.field).to_string(),
                "{doc}: default of {}",
                r.field
            );
            let rule = cells[cells.len() - 2]; // The last cell is empty (trailing `|`).
            let span = format!("{}..={}", r.min, r.max);
            assert!(
                rule.contains(&span),
                "{doc}: `{}` rule {rule:?} lacks {span}",
                r.field
            );
            if r.zero_is_off {
                assert!(
                    rule.contains("0 ("),
                    "{doc}: `{}` rule {rule:?} lacks 0",
                    r.field
                );
            }
            if r.profile == Some(Profile::Aliyun) {
                let name = if doc == "README.md" {
                    "Alibaba"
                } else {
                    "aliyun"
                };
                assert!(
                    rule.contains(&format!("{name}`: {span}"))
                        || rule.contains(&format!("{name}: {span}")),
                    "{doc}: `{}` rule {rule:?} lacks the Alibaba range",
                    r.field
                );
            }
        }
    }
}

/// docs/firmware.md lists every int option with the Kconfig default and the core's range
/// (Kconfig's range for firmware-only options).
#[test]
fn firmware_doc_table_gives_kconfig_defaults_and_ranges() {
    let doc = read("docs/firmware.md");
    let symbols = kconfig();
    for sym in symbols.iter().filter(|s| s.kind == "int") {
        let (cells, _) = row(&doc, &format!("CONFIG_MQTTS_{}", sym.name))
            .unwrap_or_else(|| panic!("docs/firmware.md: no row for CONFIG_MQTTS_{}", sym.name));
        assert_eq!(
            cells[1],
            sym.int_default().to_string(),
            "docs/firmware.md: {}",
            sym.name
        );
        let allowed = cells[2];
        let core: Vec<&OptionRange> = RANGES
            .iter()
            .filter(|r| r.field.to_ascii_uppercase() == sym.name)
            .collect();
        let spans: Vec<String> = if core.is_empty() {
            sym.ranges
                .iter()
                .map(|(lo, hi, _)| format!("{lo}..{hi}"))
                .collect()
        } else {
            core.iter()
                .map(|r| format!("{}..{}", r.min, r.max))
                .collect()
        };
        for span in spans {
            assert!(
                allowed.contains(&span),
                "docs/firmware.md: {} {allowed:?} lacks {span}",
                sym.name
            );
        }
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
