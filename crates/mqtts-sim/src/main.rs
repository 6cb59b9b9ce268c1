//! `mqtts-sim`: the host runner. See `docs/host-runner.md`.
//!
//! ```text
//! mqtts-sim demo [--forever]
//! mqtts-sim run --config FILE [--insecure] [--duration SECS]
//! mqtts-sim ctl [CONNECTION] set DEVICE SWITCH on|off
//! mqtts-sim ctl [CONNECTION] watch DEVICE [--duration SECS]
//! mqtts-sim dashboard --config FILE [--listen ADDR] [--token-file FILE]
//! mqtts-sim fleet --devices N [--config FILE] [--duration S] [--restart-broker-at S]
//! ```

mod dashboard_cli;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mqtts_sim::host_config::HostConfig;
use mqtts_sim::live::LiveView;
use mqtts_sim::platform::{PlatformClient, PlatformEvent, PlatformOptions, QoS};
use mqtts_sim::sim_device::{SimDevice, XorShift};
use mqtts_sim::tls_transport::{TlsOptions, TransportOptions};

const USAGE: &str = "\
usage:
  mqtts-sim demo [--forever]
      In-process TLS broker + simulated device + platform; exits 0 when the scenario passed.
  mqtts-sim demo --dashboard [--listen 127.0.0.1:8080]
      The demo's broker and device with the web dashboard on them, until Ctrl-C.
  mqtts-sim run --config FILE [--insecure] [--duration SECS]
      Simulated device against any broker (Alibaba Cloud IoT, Mosquitto, EMQX).
  mqtts-sim run --config FILE --store FILE [--hold-ms MS] [...]
      The same, with stored options over the file's values (see `provision`).
  mqtts-sim provision --store FILE [--config FILE] set KEY VALUE [KEY VALUE ...] | unset KEY [...] | show | factory-reset
      Stored options (secrets shown only as <set>); --config checks the whole result.
  mqtts-sim ctl [CONNECTION] set DEVICE SWITCH on|off
  mqtts-sim ctl [CONNECTION] watch DEVICE [--duration SECS]
      Self-hosted platform side. CONNECTION options:
        --config FILE        take broker_host, broker_port, tls, ca_file, tls_server_name,
                             username, password from a run-style TOML file
        --host HOST --port PORT --ca-file PEM (repeatable) --server-name NAME
        --username USER      (the password is read from the MQTTS_PASSWORD environment variable)
        --insecure           do not verify the broker certificate (warns on every connect)
        --timeout SECS       how long `set` waits for the device's confirmation (default 10)
  mqtts-sim dashboard --config FILE [--listen 127.0.0.1:8080] [--token-file FILE] [--insecure]
      Web dashboard of every self-hosted device on the broker. Binding to a non-loopback
      address needs --token-file; every request must then carry the token.
  mqtts-sim fleet --devices N [--config FILE] [--duration S] [--restart-broker-at S]
      N simulated devices against one broker, through a restart (`fleet --help`).
  Log level: MQTTS_LOG=error|warn|info|debug (default info).
";

/// Prints `log` records to stderr. The core logs nothing; this crate's records carry no
/// secrets.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
            && !m.target().starts_with("rumqttd")
            && !m.target().starts_with("tracing")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{:<5} {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn init_logging() {
    let level = match std::env::var("MQTTS_LOG").as_deref() {
        Ok("error") => log::LevelFilter::Error,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("debug") => log::LevelFilter::Debug,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

fn main() -> ExitCode {
    init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => cmd_demo(&args[1..]),
        Some("run") => cmd_run(&args[1..]),
        Some("ctl") => cmd_ctl(&args[1..]),
        Some("dashboard") => dashboard_cli::run(&args[1..]),
        Some("fleet") => mqtts_sim::fleet::cli(&args[1..]).map_err(|e| Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }),
        Some("provision") => mqtts_sim::provision::cli(&args[1..])
            .map_err(|(code, message)| Failure { code, message }),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(Failure::usage("missing or unknown command")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("mqtts-sim: {}", f.message);
            if f.code == 2 {
                eprint!("{USAGE}");
            }
            ExitCode::from(f.code)
        }
    }
}

/// Why a command failed, and its exit code (1 failure, 2 usage/config, 3 timeout).
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

/// Flags of the form `--name value` or `--flag`, plus positional arguments.
struct Args {
    positional: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Args, Failure> {
        let mut out = Args {
            positional: Vec::new(),
            options: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if with_value.contains(&a.as_str()) {
                let v = it
                    .next()
                    .ok_or_else(|| Failure::usage(format!("{a} needs a value")))?;
                out.options.push((a.clone(), Some(v.clone())));
            } else if flags.contains(&a.as_str()) {
                out.options.push((a.clone(), None));
            } else if a.starts_with("--") {
                return Err(Failure::usage(format!("unknown option {a}")));
            } else {
                out.positional.push(a.clone());
            }
        }
        Ok(out)
    }

    fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn values(&self, name: &str) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    fn seconds(&self, name: &str) -> Result<Option<Duration>, Failure> {
        self.value(name)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| Failure::usage(format!("{name}: expected seconds, got {v:?}")))
            })
            .transpose()
    }
}

fn cmd_demo(args: &[String]) -> Result<(), Failure> {
    let a = Args::parse(args, &["--listen"], &["--forever", "--dashboard"])?;
    if !a.positional.is_empty() {
        return Err(Failure::usage("demo takes no arguments"));
    }
    if a.flag("--dashboard") {
        return dashboard_cli::demo(&a);
    }
    mqtts_sim::demo::run(a.flag("--forever"))
        .map_err(|reason| Failure::failed(format!("demo FAILED: {reason}")))
}

fn cmd_run(args: &[String]) -> Result<(), Failure> {
    let a = Args::parse(
        args,
        &["--config", "--duration", "--store", "--hold-ms"],
        &["--insecure"],
    )?;
    let path = a
        .value("--config")
        .ok_or_else(|| Failure::usage("run needs --config FILE"))?;
    let duration = a.seconds("--duration")?;
    let insecure = a.flag("--insecure");
    let config =
        HostConfig::load(&PathBuf::from(path)).map_err(|e| Failure::usage(e.to_string()))?;
    let (config, mut store) = match a.value("--store") {
        Some(store) => {
            let hold = match a.value("--hold-ms") {
                None => mqtts_sim::provision::LastWriter::DEFAULT_HOLD_MS,
                Some(v) => v.parse().map_err(|_| {
                    Failure::usage(format!("--hold-ms: expected milliseconds, got {v:?}"))
                })?,
            };
            let (c, s) = mqtts_sim::provision::prepare_run(config, store, hold)
                .map_err(|e| Failure::usage(e.to_string()))?;
            (c, Some(s))
        }
        None => (config, None),
    };
    if insecure {
        log::warn!("--insecure: the broker's certificate will NOT be verified");
    }
    // SIGINT/SIGTERM only set a flag: the loop below then stops the device cleanly.
    let signalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&signalled))
            .map_err(|e| Failure::usage(format!("cannot handle signal {sig}: {e}")))?;
    }
    let initial = store.as_ref().map(|s| s.initial_states.clone());
    let device = SimDevice::start_with_states(config, insecure, initial.as_deref().unwrap_or(&[]))
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut view = LiveView::new(io::stdout());
    view.note(&format!("device started from {path}"));
    let started = Instant::now();
    loop {
        if signalled.load(std::sync::atomic::Ordering::Relaxed) {
            view.note("signal received; disconnecting");
            device.stop();
            return Ok(());
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            view.note("duration reached; disconnecting");
            device.stop();
            return Ok(());
        }
        if let Ok(observed) = device.events().recv_timeout(Duration::from_millis(100)) {
            view.device(&observed);
        }
        view.status(&device.status());
        if let Some(store) = store.as_mut() {
            for (switch, on) in store.observe(&device.status().switches) {
                view.note(&format!("stored last.{switch} = {on}"));
            }
        }
    }
}

fn ctl_options(a: &Args) -> Result<PlatformOptions, Failure> {
    let insecure = a.flag("--insecure");
    let mut transport;
    let mut username = a.value("--username").map(str::to_string);
    let mut password = std::env::var("MQTTS_PASSWORD").ok();
    if let Some(path) = a.value("--config") {
        let c =
            HostConfig::load(&PathBuf::from(path)).map_err(|e| Failure::usage(e.to_string()))?;
        if c.broker_host.is_none() {
            return Err(Failure::usage(
                "invalid configuration: option `broker_host`: missing: this option is required here",
            ));
        }
        transport = c.transport_options(insecure);
        username = username.or(c.username.clone());
        password = password.or(c.password.clone());
    } else {
        let host = a
            .value("--host")
            .ok_or_else(|| Failure::usage("ctl needs --config FILE or --host HOST"))?;
        let port =
            match a.value("--port") {
                None => 8883,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    Failure::usage(format!("--port: allowed 1..=65535, got {p:?}"))
                })?,
            };
        transport = TransportOptions {
            host: host.into(),
            port,
            tls: Some(TlsOptions {
                ca_files: a
                    .values("--ca-file")
                    .into_iter()
                    .map(PathBuf::from)
                    .collect(),
                insecure,
                ..TlsOptions::default()
            }),
            connect_timeout: Duration::from_secs(10),
        };
    }
    if let Some(tls) = transport.tls.as_mut() {
        if let Some(name) = a.value("--server-name") {
            tls.server_name = Some(name.into());
        }
        if tls.ca_files.is_empty() && !tls.insecure {
            return Err(Failure::usage(
                "ctl: give the broker's CA with --ca-file (or ca_file in --config), or --insecure",
            ));
        }
    }
    if password.is_some() && username.is_none() {
        return Err(Failure::usage("a password needs --username (MQTT 3.1.1)"));
    }
    let client_id = format!("mqtts-ctl-{:08x}", XorShift::from_time().next_u32());
    let mut options = PlatformOptions::new(transport, &client_id);
    options.username = username;
    options.password = password;
    Ok(options)
}

fn cmd_ctl(args: &[String]) -> Result<(), Failure> {
    let a = Args::parse(
        args,
        &[
            "--config",
            "--host",
            "--port",
            "--ca-file",
            "--server-name",
            "--username",
            "--timeout",
            "--duration",
        ],
        &["--insecure"],
    )?;
    let positional: Vec<&str> = a.positional.iter().map(String::as_str).collect();
    match positional.as_slice() {
        ["set", device, switch, value] => {
            let on = match *value {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                other => {
                    return Err(Failure::usage(format!(
                        "switch value {other:?}: allowed on, off"
                    )))
                }
            };
            let timeout = a.seconds("--timeout")?.unwrap_or(Duration::from_secs(10));
            ctl_set(ctl_options(&a)?, device, switch, on, timeout)
        }
        ["watch", device] => ctl_watch(ctl_options(&a)?, device, a.seconds("--duration")?),
        _ => Err(Failure::usage(
            "ctl: expected `set DEVICE SWITCH on|off` or `watch DEVICE`",
        )),
    }
}

fn check_device_id(device: &str) -> Result<(), Failure> {
    if mqtts_core::selfhosted::is_device_id(device) {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "device id {device:?}: allowed 1..=64 characters of [A-Za-z0-9_-]"
        )))
    }
}

fn ctl_set(
    options: PlatformOptions,
    device: &str,
    switch: &str,
    on: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    check_device_id(device)?;
    let reply_topic = format!("devices/{device}/reply");
    let state_topic = format!("devices/{device}/state");
    let options = options
        .subscribe(&reply_topic, QoS::AtLeastOnce)
        .subscribe(&state_topic, QoS::AtLeastOnce);
    let deadline = Instant::now() + timeout;
    let client = PlatformClient::start(options).map_err(|e| Failure::usage(e.to_string()))?;
    let left = || deadline.saturating_duration_since(Instant::now());
    let timed_out = |what: &str| Failure {
        code: 3,
        message: format!("timed out after {timeout:?} waiting for {what}"),
    };
    let mut last_offline = None;
    let ready = client.wait_ready(left(), true);
    if !ready {
        return Err(timed_out("the broker connection"));
    }
    let id = format!("ctl-{:08x}", XorShift::from_time().next_u32());
    let command = serde_json::json!({"id": id, "switch": switch, "on": on}).to_string();
    client
        .publish(
            &format!("devices/{device}/set"),
            command.as_bytes(),
            QoS::AtLeastOnce,
            false,
        )
        .map_err(|e| Failure::failed(format!("publish: {e}")))?;
    println!("sent to devices/{device}/set: {command}");
    let reply = client.wait_for(
        left(),
        |e| {
            if let PlatformEvent::Offline { error } = e {
                last_offline = Some(error.clone());
            }
        },
        |e| match e {
            PlatformEvent::Message(m) if m.topic == reply_topic => {
                m.json().filter(|v| v["id"] == id.as_str())
            }
            _ => None,
        },
    );
    let Some(reply) = reply else {
        let why = last_offline
            .map(|o| format!(" (connection: {o})"))
            .unwrap_or_default();
        return Err(timed_out(&format!(
            "the device's reply{why}; is {device} online?"
        )));
    };
    println!("reply: {reply}");
    if reply["ok"] != serde_json::Value::Bool(true) {
        return Err(Failure::failed(format!(
            "device refused the command: {}",
            reply["error"].as_str().unwrap_or("unknown error")
        )));
    }
    // The state report after the change confirms the new output state.
    let state = client.wait_for(
        left(),
        |_| {},
        |e| match e {
            PlatformEvent::Message(m) if m.topic == state_topic => {
                m.json().filter(|v| v["switches"][switch] == on)
            }
            _ => None,
        },
    );
    match state {
        Some(s) => {
            println!(
                "confirmed: {switch} is {} ({s})",
                if on { "on" } else { "off" }
            );
            client.stop();
            Ok(())
        }
        None => Err(timed_out("the state report confirming the change")),
    }
}

fn ctl_watch(
    options: PlatformOptions,
    device: &str,
    duration: Option<Duration>,
) -> Result<(), Failure> {
    check_device_id(device)?;
    let options = options
        .subscribe(&format!("devices/{device}/status"), QoS::AtLeastOnce)
        .subscribe(&format!("devices/{device}/state"), QoS::AtLeastOnce)
        .subscribe(&format!("devices/{device}/reply"), QoS::AtLeastOnce);
    let client = PlatformClient::start(options).map_err(|e| Failure::usage(e.to_string()))?;
    let mut view = LiveView::new(io::stdout());
    view.note(&format!("watching {device} (Ctrl-C to stop)"));
    let started = Instant::now();
    while duration.is_none_or(|d| started.elapsed() < d) {
        let Some(event) = client.next_event(Duration::from_millis(100)) else {
            continue;
        };
        match event {
            PlatformEvent::Online { .. } => view.platform("connected to the broker"),
            PlatformEvent::Offline { error } => {
                view.platform(&format!("broker connection lost: {error}"))
            }
            PlatformEvent::Message(m) => {
                let leaf = m.topic.rsplit('/').next().unwrap_or("").to_string();
                let text = match (leaf.as_str(), m.json()) {
                    ("status", _) => format!("device is {}", m.text()),
                    ("state", Some(v)) => {
                        let switches = v["switches"]
                            .as_object()
                            .map(|o| {
                                o.iter()
                                    .map(|(k, v)| {
                                        format!("{k}={}", if v == true { "ON" } else { "off" })
                                    })
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            })
                            .unwrap_or_default();
                        format!(
                            "state: {switches}  uptime={}s reconnects={} last_failure={}",
                            v["uptime_s"], v["reconnects"], v["last_failure"]
                        )
                    }
                    _ => format!("{leaf}: {}", m.text()),
                };
                view.platform(&text);
            }
            PlatformEvent::Subscribed(_) | PlatformEvent::Delivered(_) => {}
        }
    }
    client.stop();
    Ok(())
}
