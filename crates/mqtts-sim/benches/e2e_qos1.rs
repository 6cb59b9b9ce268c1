//! End-to-end QoS 1 publishing against a real Mosquitto over TLS 1.3 on loopback: our `Driver`
//! over `TlsTransport` versus libmosquitto's `mosquitto_pub -l`, on the same broker instance.
//!
//! ```text
//! cargo bench -p mqtts-sim --bench e2e_qos1 -- [--messages N] [--window W] [--payload BYTES]
//!                                              [--runs R] [--no-verify] [--flush-each]
//! ```
//! Defaults: 10 000 messages of 64 B, window 16, 5 runs per client (alternating which client
//! goes first). `W` is our session's `INFLIGHT`, `mosquitto_pub -M W` and the broker's
//! `max_inflight_messages`. Our client queues the PUBLISHes that fit the window
//! (`Driver::queue_publish`) and sends them with one `Driver::flush`; `--flush-each` uses
//! `Driver::publish`, which sends every message on its own.
//!
//! Before the timed runs, one run of each client against a second broker that logs every
//! packet checks that all N PUBLISHes were acknowledged and that each client said DISCONNECT
//! only after the last PUBACK; the timed broker logs errors only. This is a measurement, not a
//! test: nothing here asserts a speed.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mqtts_core::codec::{Connect, QoS};
use mqtts_core::driver::{Driver, DriverConfig, DriverEvent};
use mqtts_core::session::{Event, RequestError};
use mqtts_sim::mosquitto::{Mosquitto, MosquittoConfig, TlsFiles};
use mqtts_sim::pki::TestPki;
use mqtts_sim::tls_transport::{TlsTransport, TransportOptions};

const TOPIC: &str = "bench/qos1";
const OURS_ID: &str = "bench-ours";
const MOSQ_ID: &str = "bench-mosq";
/// Receive ring and send queue of our client (PUBACKs in, PUBLISHes out).
const RX: usize = 4096;
const TX: usize = 4096;
/// Store bytes per in-flight message: the largest payload supported plus headers and topic.
const STORE_PER_MESSAGE: usize = 1024 + 64;
/// The sleep in mosquitto_pub's stdin line loop (client/pub_client.c, 2.0.x) once stdin ended.
const LINE_LOOP_SLEEP: Duration = Duration::from_millis(100);
/// Longest single wait for the socket (a wait that times out just loops again).
const WAIT_SLICE: Duration = Duration::from_millis(5);
/// Gives up on a client that makes no progress for this long.
const STALL_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Args {
    messages: usize,
    window: usize,
    payload: usize,
    runs: usize,
    verify: bool,
    /// `Driver::publish` (one send per message) instead of `queue_publish` + `flush`.
    flush_each: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        messages: 10_000,
        window: 16,
        payload: 64,
        runs: 5,
        verify: true,
        flush_each: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--messages" => args.messages = number("--messages")?,
            "--window" => args.window = number("--window")?,
            "--payload" => args.payload = number("--payload")?,
            "--runs" => args.runs = number("--runs")?,
            "--no-verify" => args.verify = false,
            "--flush-each" => args.flush_each = true,
            // `cargo bench` passes `--bench`; filters and criterion flags are not ours.
            _ => {}
        }
    }
    if args.messages == 0 || args.runs == 0 {
        return Err("--messages and --runs must be at least 1".into());
    }
    if args.payload > 1024 {
        return Err("--payload is at most 1024 (the store is sized for it)".into());
    }
    Ok(args)
}

/// What one client run measured.
#[derive(Debug, Clone, Default)]
struct RunResult {
    /// Start of the connection attempt (ours) or process spawn (mosquitto_pub) to the end.
    total: Duration,
    /// First PUBLISH to last PUBACK (ours only).
    publish_phase: Option<Duration>,
    /// TCP + TLS + CONNECT/CONNACK (ours only).
    connect: Option<Duration>,
    /// Publish-to-PUBACK latencies, sorted (ours only).
    latencies: Vec<Duration>,
    /// CPU time of the client (user + system).
    client_cpu: Duration,
    /// CPU time the broker spent during the run.
    broker_cpu: Duration,
    /// Negotiated TLS version as rustls names it (ours only).
    tls: Option<String>,
}

/// CPU times from `/proc/<pid>/stat`: (utime + stime, cutime + cstime) in clock ticks.
fn cpu_ticks(pid: &str) -> (u64, u64) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime is field 14 of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    // rest[0] is field 3 (state), so field n is rest[n - 3].
    (at(11) + at(12), at(13) + at(14))
}

fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    Duration::from_micros(ticks * 1_000_000 / hz.max(1))
}

fn clock_hz() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn payload_bytes(len: usize) -> Vec<u8> {
    // Printable and newline-free, so the same bytes can be one `mosquitto_pub -l` line.
    (0..len)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz"[i % 36])
        .collect()
}

/// Our client: connect, publish `messages` at QoS 1 keeping `W` in flight, wait for every
/// PUBACK, disconnect.
fn run_ours<const W: usize, const STORE: usize>(
    args: &Args,
    port: u16,
    ca: &Path,
    payload: &[u8],
) -> Result<RunResult, String> {
    let transport = TlsTransport::new(TransportOptions::tls("127.0.0.1", port, &[ca]))
        .map_err(|e| e.to_string())?;
    let connect = Connect {
        client_id: OURS_ID,
        keep_alive: 60,
        clean_session: true,
        username: None,
        password: None,
        will: None,
    };
    // Boxed: the store of a large window does not belong on the stack.
    let mut driver: Box<Driver<'_, TlsTransport, RX, TX, STORE, W, 1>> = Box::new(Driver::new(
        transport,
        DriverConfig::default(),
        connect,
        &[],
    ));
    let (cpu0, _) = cpu_ticks("self");
    let start = Instant::now();
    let now_ms = || start.elapsed().as_millis() as u64;

    loop {
        match driver.poll(now_ms(), 0) {
            Some(DriverEvent::Online { .. }) => break,
            Some(DriverEvent::Offline { cause, .. }) => {
                return Err(format!(
                    "connect failed: {} ({:?})",
                    cause.as_str(),
                    driver.transport().last_error()
                ))
            }
            Some(_) => {}
            None if start.elapsed() > STALL_LIMIT => return Err("connect stalled".into()),
            None => thread::yield_now(),
        }
    }
    let connected = start.elapsed();
    let tls = driver
        .transport()
        .protocol_version()
        .map(|v| format!("{v:?}"));

    // Publish time per packet id; ids are reused only after their PUBACK.
    let mut sent_at: Vec<Option<Instant>> = vec![None; usize::from(u16::MAX) + 1];
    let mut latencies = Vec::with_capacity(args.messages);
    let (mut sent, mut acked) = (0usize, 0usize);
    let first_publish = Instant::now();
    let mut last_progress = first_publish;
    while acked < args.messages {
        let mut progressed = false;
        while sent < args.messages && !driver.session().is_full() {
            let t = Instant::now();
            let r = if args.flush_each {
                driver.publish(now_ms(), TOPIC, payload, QoS::AtLeastOnce, false)
            } else {
                driver.queue_publish(now_ms(), TOPIC, payload, QoS::AtLeastOnce, false)
            };
            match r {
                Ok(Some(id)) => {
                    sent_at[usize::from(id)] = Some(t);
                    sent += 1;
                    progressed = true;
                }
                Ok(None) => return Err("QoS 1 publish returned no packet id".into()),
                Err(RequestError::Busy) => break,
                Err(e) => return Err(format!("publish: {e:?}")),
            }
        }
        // Everything the window allowed goes out in one send: one TLS record, one segment.
        driver.flush();
        while let Some(event) = driver.poll(now_ms(), 0) {
            progressed = true;
            match event {
                DriverEvent::Session(Event::Published { packet_id }) => {
                    let t = sent_at[usize::from(packet_id)]
                        .take()
                        .ok_or(format!("PUBACK for unknown id {packet_id}"))?;
                    latencies.push(t.elapsed());
                    acked += 1;
                }
                DriverEvent::Offline { cause, .. } => {
                    return Err(format!("connection lost: {}", cause.as_str()))
                }
                _ => {}
            }
        }
        if progressed {
            last_progress = Instant::now();
        } else if last_progress.elapsed() > STALL_LIMIT {
            return Err(format!("stalled at {acked}/{} acknowledged", args.messages));
        } else {
            // Window full or all sent: only a PUBACK can move things on. Block on the socket
            // like libmosquitto's select() loop does, instead of spinning.
            driver.transport_mut().wait_readable(WAIT_SLICE);
        }
    }
    let publish_phase = first_publish.elapsed();
    driver.shutdown();
    let total = start.elapsed();
    let (cpu1, _) = cpu_ticks("self");
    latencies.sort_unstable();
    Ok(RunResult {
        total,
        publish_phase: Some(publish_phase),
        connect: Some(connected),
        latencies,
        client_cpu: ticks_to_duration(cpu1.saturating_sub(cpu0), clock_hz()),
        broker_cpu: Duration::ZERO,
        tls,
    })
}

/// Picks the monomorphised client for the window (the in-flight limit is a const generic).
fn ours(args: &Args, port: u16, ca: &Path, payload: &[u8]) -> Result<RunResult, String> {
    const S: usize = STORE_PER_MESSAGE;
    match args.window {
        1 => run_ours::<1, { S }>(args, port, ca, payload),
        4 => run_ours::<4, { 4 * S }>(args, port, ca, payload),
        8 => run_ours::<8, { 8 * S }>(args, port, ca, payload),
        16 => run_ours::<16, { 16 * S }>(args, port, ca, payload),
        32 => run_ours::<32, { 32 * S }>(args, port, ca, payload),
        64 => run_ours::<64, { 64 * S }>(args, port, ca, payload),
        w => Err(format!(
            "window {w} not built in; use 1, 4, 8, 16, 32 or 64"
        )),
    }
}

/// libmosquitto's client: `mosquitto_pub -l` with one message per stdin line, timed from spawn
/// to exit. With `-l` and QoS 1 it disconnects once the last message's PUBACK arrived and exits
/// after that (checked against the broker log in the verification run).
fn run_mosquitto_pub(
    window: usize,
    port: u16,
    ca: &Path,
    lines: &Path,
    nodelay: bool,
) -> Result<RunResult, String> {
    let stdin = File::open(lines).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .arg("--cafile")
        .arg(ca)
        .args(["--tls-version", "tlsv1.3", "-V", "mqttv311"])
        .args(["-i", MOSQ_ID, "-t", TOPIC, "-q", "1"])
        .args(["-M", &window.to_string(), "-l"]);
    if nodelay {
        cmd.arg("--nodelay");
    }
    cmd.stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (_, child0) = cpu_ticks("self");
    let start = Instant::now();
    let out = cmd
        .spawn()
        .map_err(|e| format!("mosquitto_pub: {e}"))?
        .wait_with_output()
        .map_err(|e| e.to_string())?;
    let total = start.elapsed();
    // The child was waited for, so its CPU time is now in our cutime/cstime.
    let (_, child1) = cpu_ticks("self");
    if !out.status.success() {
        return Err(format!(
            "mosquitto_pub exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(RunResult {
        total,
        client_cpu: ticks_to_duration(child1.saturating_sub(child0), clock_hz()),
        ..RunResult::default()
    })
}

fn write_lines(path: &Path, payload: &[u8], count: usize) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    for _ in 0..count {
        w.write_all(payload)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

fn broker(pki: &TestPki, window: usize, quiet: bool) -> Result<Mosquitto, String> {
    let mut extra = vec![format!("max_inflight_messages {window}")];
    if quiet {
        // After the harness's `log_type all`: `none` resets the mask, then errors only.
        extra.push("log_type none".into());
        extra.push("log_type error".into());
    }
    Mosquitto::start(&MosquittoConfig {
        tls: Some(TlsFiles {
            ca_file: pki.ca_file.clone(),
            cert_file: pki.server_files.cert_file.clone(),
            key_file: pki.server_files.key_file.clone(),
        }),
        extra,
        ..MosquittoConfig::default()
    })
    .map_err(|e| e.to_string())
}

/// From a broker log with every packet logged: PUBLISHes received from `client`, PUBACKs sent
/// to it, and whether its DISCONNECT came after the last PUBACK.
fn audit(log: &str, client: &str) -> (usize, usize, bool) {
    let lines: Vec<&str> = log.lines().collect();
    let publish = format!("Received PUBLISH from {client} ");
    let puback = format!("Sending PUBACK to {client} ");
    let disconnect = format!("Received DISCONNECT from {client}");
    let received = lines.iter().filter(|l| l.contains(&publish)).count();
    let acks: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(&puback))
        .collect();
    let bye = lines.iter().position(|l| l.contains(&disconnect));
    let ordered = matches!((acks.last(), bye), (Some(&a), Some(b)) if b > a);
    (received, acks.len(), ordered)
}

fn verify(args: &Args, pki: &TestPki, payload: &[u8], lines: &Path) -> Result<(), String> {
    let mut b = broker(pki, args.window, false)?;
    let port = b.tls_port();
    ours(args, port, &pki.ca_file, payload)?;
    run_mosquitto_pub(args.window, port, &pki.ca_file, lines, true)?;
    // Let the broker write its last lines.
    thread::sleep(Duration::from_millis(300));
    let log = b.log();
    b.kill();
    for client in [OURS_ID, MOSQ_ID] {
        let (received, acked, ordered) = audit(&log, client);
        println!(
            "verify {client}: broker received {received} PUBLISH, sent {acked} PUBACK, \
             DISCONNECT after last PUBACK: {ordered}"
        );
        if received != args.messages || acked != args.messages || !ordered {
            return Err(format!("verification failed for {client}"));
        }
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[i]
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("e2e_qos1: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("e2e_qos1: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    if mqtts_sim::mosquitto::mosquitto_binary().is_none() {
        println!("e2e_qos1: SKIPPED, mosquitto is not installed");
        return Ok(());
    }
    let have_pub = Command::new("mosquitto_pub")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pki = TestPki::generate(dir.path(), &[]).map_err(|e| e.to_string())?;
    let payload = payload_bytes(args.payload);
    let lines = dir.path().join("messages.txt");
    let one_line: PathBuf = dir.path().join("one.txt");
    write_lines(&lines, &payload, args.messages).map_err(|e| e.to_string())?;
    write_lines(&one_line, &payload, 1).map_err(|e| e.to_string())?;

    println!(
        "e2e_qos1: {} messages x {} B, QoS 1, window {}, {} runs, TLS 1.3 to Mosquitto on 127.0.0.1",
        args.messages, args.payload, args.window, args.runs
    );
    println!("load average before: {}", loadavg());
    if args.verify && have_pub {
        verify(args, &pki, &payload, &lines)?;
    }

    let mut b = broker(&pki, args.window, true)?;
    let port = b.tls_port();
    let broker_pid = b.pid().map(|p| p.to_string()).unwrap_or_default();
    let hz = clock_hz();
    let timed = |f: &mut dyn FnMut() -> Result<RunResult, String>| -> Result<RunResult, String> {
        let (b0, _) = cpu_ticks(&broker_pid);
        let mut r = f()?;
        let (b1, _) = cpu_ticks(&broker_pid);
        r.broker_cpu = ticks_to_duration(b1.saturating_sub(b0), hz);
        Ok(r)
    };

    let mut our_runs = Vec::new();
    let mut pub_runs = Vec::new();
    let mut pub_plain_runs = Vec::new();
    let mut pub_one = Vec::new();
    for r in 0..args.runs {
        let ours_run = || timed(&mut || ours(args, port, &pki.ca_file, &payload));
        let pub_run = |file: &Path, nodelay: bool| {
            timed(&mut || run_mosquitto_pub(args.window, port, &pki.ca_file, file, nodelay))
        };
        // Alternate the order so drift in the machine's load hits both clients alike.
        if r % 2 == 0 {
            our_runs.push(ours_run()?);
        }
        if have_pub {
            pub_runs.push(pub_run(&lines, true)?);
            pub_plain_runs.push(pub_run(&lines, false)?);
            pub_one.push(pub_run(&one_line, true)?);
        }
        if r % 2 == 1 {
            our_runs.push(ours_run()?);
        }
        let last = our_runs.last().map(|o| rate(args.messages, o.total));
        let last_pub = pub_runs.last().map(|p| rate(args.messages, p.total));
        println!(
            "run {}: ours {:.0} msg/s end to end, mosquitto_pub {:.0} msg/s end to end (load {})",
            r + 1,
            last.unwrap_or(0.0),
            last_pub.unwrap_or(0.0),
            loadavg()
        );
    }
    b.kill();

    let n = args.messages;
    let our_total = median(our_runs.iter().map(|r| r.total).collect());
    let our_phase = median(our_runs.iter().filter_map(|r| r.publish_phase).collect());
    let our_connect = median(our_runs.iter().filter_map(|r| r.connect).collect());
    let mut all_lat: Vec<Duration> = our_runs.iter().flat_map(|r| r.latencies.clone()).collect();
    all_lat.sort_unstable();
    let p50s = median(
        our_runs
            .iter()
            .map(|r| percentile(&r.latencies, 50))
            .collect(),
    );
    let p99s = median(
        our_runs
            .iter()
            .map(|r| percentile(&r.latencies, 99))
            .collect(),
    );
    let our_cpu = median(our_runs.iter().map(|r| r.client_cpu).collect());
    let our_broker = median(our_runs.iter().map(|r| r.broker_cpu).collect());
    let tls = our_runs
        .first()
        .and_then(|r| r.tls.clone())
        .unwrap_or_default();

    println!();
    println!("Medians of {} runs ({n} messages each):", args.runs);
    println!();
    println!("| client | end to end | msg/s (end to end) | publish phase | msg/s (publish phase) | p50 / p99 publish→PUBACK | client CPU | broker CPU |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| ours (Driver::{} + TlsTransport, {tls}) | {} | {:.0} | {} | {:.0} | {} / {} (all runs pooled: {} / {}, max {}) | {} | {} |",
        if args.flush_each { "publish" } else { "queue_publish + flush" },
        ms(our_total),
        rate(n, our_total),
        ms(our_phase),
        rate(n, our_phase),
        us(p50s),
        us(p99s),
        us(percentile(&all_lat, 50)),
        us(percentile(&all_lat, 99)),
        us(all_lat.last().copied().unwrap_or_default()),
        ms(our_cpu),
        ms(our_broker),
    );
    println!(
        "  (our connect: TCP + TLS + CONNECT/CONNACK {})",
        ms(our_connect)
    );
    if have_pub {
        let one = median(pub_one.iter().map(|r| r.total).collect());
        for (name, runs) in [
            ("mosquitto_pub --nodelay", &pub_runs),
            ("mosquitto_pub (Nagle on)", &pub_plain_runs),
        ] {
            let total = median(runs.iter().map(|r| r.total).collect());
            // The 1-message run holds all fixed costs, including pub_client.c's 100 ms sleep
            // after the last stdin line; with N lines the sending overlaps that sleep, so it
            // is added back (valid once sending takes longer than the sleep).
            let phase = total.saturating_sub(one) + LINE_LOOP_SLEEP;
            println!(
                "| {name} | {} | {:.0} | ≈{} (T_N − T_1 + 100 ms) | ≈{:.0} | not reported | {} | {} |",
                ms(total),
                rate(n, total),
                ms(phase),
                rate(n.saturating_sub(1), phase),
                ms(median(runs.iter().map(|r| r.client_cpu).collect())),
                ms(median(runs.iter().map(|r| r.broker_cpu).collect())),
            );
        }
        println!(
            "  (mosquitto_pub -l with 1 message, spawn to exit: {}; its fixed cost: process start, \
             TLS, CONNECT, two 100 ms sleeps in pub_client.c's line loop)",
            ms(one)
        );
    } else {
        println!("| mosquitto_pub | not installed | | | | | | |");
    }
    println!();
    println!("load average after: {}", loadavg());
    Ok(())
}
