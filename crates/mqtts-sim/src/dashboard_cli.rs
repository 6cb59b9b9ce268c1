//! `mqtts-sim dashboard` and `mqtts-sim demo --dashboard`: command-line wrappers around
//! [`mqtts_sim::dashboard::Dashboard`].

use std::net::SocketAddr;
use std::time::Duration;

use mqtts_sim::broker::{BrokerOptions, InProcessBroker};
use mqtts_sim::dashboard::{Dashboard, DashboardOptions};
use mqtts_sim::host_config::{CaFiles, HostConfig};
use mqtts_sim::pki::TestPki;
use mqtts_sim::platform::PlatformOptions;
use mqtts_sim::sim_device::{SimDevice, XorShift};
use mqtts_sim::tls_transport::TransportOptions;

use super::{ctl_options, Args, Failure};

/// Default listen address: loopback only.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long a command may wait for the device's reply.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

fn listen(a: &Args) -> Result<SocketAddr, Failure> {
    let text = a.value("--listen").unwrap_or(DEFAULT_LISTEN);
    text.parse().map_err(|_| {
        Failure::usage(format!(
            "--listen: expected IP:PORT (e.g. {DEFAULT_LISTEN}), got {text:?}"
        ))
    })
}

fn token(a: &Args) -> Result<Option<String>, Failure> {
    let Some(path) = a.value("--token-file") else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("--token-file {path}: {e}")))?;
    Ok(Some(text.trim().to_string()))
}

fn serve_until_ctrl_c(options: DashboardOptions) -> Result<(), Failure> {
    let dashboard = Dashboard::start(options).map_err(|e| Failure::usage(e.to_string()))?;
    println!("dashboard: {}", dashboard.url());
    if dashboard.token_required() {
        println!("(open it with ?token=<the contents of --token-file> appended)");
    }
    println!("Ctrl-C to stop");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("signal handler: {e}")))?;
    runtime
        .block_on(tokio::signal::ctrl_c())
        .map_err(|e| Failure::failed(format!("signal handler: {e}")))?;
    println!("stopping");
    dashboard.stop();
    Ok(())
}

/// `mqtts-sim dashboard --config FILE [--listen ADDR] [--token-file FILE] [--insecure]`.
pub fn run(args: &[String]) -> Result<(), Failure> {
    let a = Args::parse(
        args,
        &["--config", "--listen", "--token-file"],
        &["--insecure"],
    )?;
    if a.value("--config").is_none() {
        return Err(Failure::usage("dashboard needs --config FILE"));
    }
    if !a.positional.is_empty() {
        return Err(Failure::usage("dashboard takes no positional arguments"));
    }
    let mut platform = ctl_options(&a)?;
    platform.client_id = format!("mqtts-dashboard-{:08x}", XorShift::from_time().next_u32());
    serve_until_ctrl_c(DashboardOptions {
        platform,
        listen: listen(&a)?,
        token: token(&a)?,
        command_timeout: COMMAND_TIMEOUT,
    })
}

/// `mqtts-sim demo --dashboard [--listen ADDR]`: the demo's in-process TLS broker and
/// simulated device, and the dashboard on them, until Ctrl-C.
pub fn demo(a: &Args) -> Result<(), Failure> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Failure::failed(format!("{what}: {e}"));
    let dir = tempfile::tempdir().map_err(|e| failed("temp dir", &e))?;
    let pki = TestPki::generate(dir.path(), &[]).map_err(|e| failed("certificates", &e))?;
    let broker = InProcessBroker::start(BrokerOptions::new(pki.server.clone()))
        .map_err(|e| failed("broker", &e))?;
    let port = broker.tls_port();
    println!("in-process MQTT broker: TLS on 127.0.0.1:{port} (throwaway CA)");
    let config = HostConfig {
        profile: Some("self-hosted".into()),
        broker_host: Some("localhost".into()),
        broker_port: Some(port.into()),
        device_id: Some(mqtts_sim::demo::DEVICE_ID.into()),
        ca_file: Some(CaFiles::One(pki.ca_file.display().to_string())),
        backoff_min_ms: Some(200),
        backoff_max_ms: Some(2_000),
        telemetry_period_s: Some(5),
        ..HostConfig::default()
    };
    let device = SimDevice::start(config, false).map_err(|e| failed("device", &e))?;
    println!(
        "simulated device {} (switches Relay1, LED) started",
        mqtts_sim::demo::DEVICE_ID
    );
    let platform = PlatformOptions::new(
        TransportOptions::tls("localhost", port, &[&pki.ca_file]),
        "demo-dashboard",
    );
    let result = serve_until_ctrl_c(DashboardOptions {
        platform,
        listen: listen(a)?,
        token: None,
        command_timeout: COMMAND_TIMEOUT,
    });
    device.stop();
    drop(broker);
    result
}
