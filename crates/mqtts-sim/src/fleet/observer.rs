//! The fleet's independent observer: a `mosquitto_sub` process (Eclipse Mosquitto's own client, not our
//! core) subscribed at QoS 1 with a persistent session to every device's telemetry topic. It
//! counts the distinct `(device, seq)` messages the broker delivered, so a message the broker
//! acknowledged to a device but then dropped shows up as lost.
//!
//! Its options, the password included, go into a `mosquitto_sub` config file in a private
//! temporary directory (`XDG_CONFIG_HOME`), never onto the command line. If the process exits
//! (the broker went away and it gave up), it is started again with the same client id and
//! `-c`, so the broker's queued messages for it are delivered on reconnect.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Topic filter the observer subscribes to; devices publish on `devices/<id>/telemetry`.
pub const TELEMETRY_FILTER: &str = "devices/+/telemetry";

/// Where the observer connects and how.
#[derive(Debug, Clone)]
pub struct ObserverOptions {
    /// Broker host (also the name checked against the certificate).
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// PEM file of the CA to trust; `None` with `tls` uses the system store (`/etc/ssl/certs`).
    pub ca_file: Option<PathBuf>,
    /// Use TLS.
    pub tls: bool,
    /// MQTT user name.
    pub username: Option<String>,
    /// MQTT password (written to the private options file only).
    pub password: Option<String>,
    /// MQTT client id (persistent session).
    pub client_id: String,
}

#[derive(Default)]
struct Seen {
    by_device: HashMap<String, HashSet<u32>>,
}

/// Counters the observer thread keeps.
#[derive(Default)]
struct State {
    seen: Mutex<Seen>,
    distinct: AtomicU64,
    duplicates: AtomicU64,
    subscribed: AtomicU64,
    restarts: AtomicU64,
    stop: AtomicBool,
    child: Mutex<Option<Child>>,
}

/// A running observer; stopped (process killed) on drop.
pub struct Observer {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
    _dir: TempDir,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("distinct", &self.distinct())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Observer {
    /// Starts `mosquitto_sub` and waits up to `timeout` until its subscription is acknowledged.
    pub fn start(options: &ObserverOptions, timeout: Duration) -> Result<Observer, String> {
        let binary = which("mosquitto_sub").ok_or(
            "mosquitto_sub not found: install it with `apt-get install -y mosquitto-clients`",
        )?;
        which("stdbuf").ok_or("stdbuf (GNU coreutils) not found")?;
        let dir = tempfile::Builder::new()
            .prefix("mqtts-fleet-observer-")
            .tempdir()
            .map_err(|e| format!("observer temp dir: {e}"))?;
        write_options(&dir, options)?;
        let state = Arc::new(State::default());
        let config_home = dir.path().to_path_buf();
        let thread_state = state.clone();
        let thread = thread::Builder::new()
            .name("fleet-observer".into())
            .spawn(move || observe(&binary, &config_home, &thread_state))
            .map_err(|e| format!("observer thread: {e}"))?;
        let observer = Observer {
            state,
            thread: Some(thread),
            _dir: dir,
        };
        let deadline = Instant::now() + timeout;
        while observer.state.subscribed.load(Ordering::Relaxed) == 0 {
            if Instant::now() > deadline {
                return Err(format!(
                    "mosquitto_sub did not subscribe to {TELEMETRY_FILTER} within {timeout:?}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(observer)
    }

    /// Distinct `(device, seq)` messages received so far.
    pub fn distinct(&self) -> u64 {
        self.state.distinct.load(Ordering::Relaxed)
    }

    /// Messages received again (QoS 1 allows duplicates; they are not counted twice).
    pub fn duplicates(&self) -> u64 {
        self.state.duplicates.load(Ordering::Relaxed)
    }

    /// How often `mosquitto_sub` had to be started again.
    pub fn restarts(&self) -> u64 {
        self.state.restarts.load(Ordering::Relaxed)
    }

    /// How many of `device`'s sequence numbers `0..published` were never received.
    pub fn missing(&self, device: &str, published: u32) -> u32 {
        let seen = lock(&self.state.seen);
        let got = seen
            .by_device
            .get(device)
            .map(|s| s.iter().filter(|&&q| q < published).count())
            .unwrap_or(0);
        published.saturating_sub(u32::try_from(got).unwrap_or(u32::MAX))
    }

    /// Kills `mosquitto_sub` and joins the reader thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        if let Some(mut child) = lock(&self.state.child).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// `$XDG_CONFIG_HOME/mosquitto_sub`: one option per line (see `man mosquitto_sub`).
fn write_options(dir: &TempDir, o: &ObserverOptions) -> Result<(), String> {
    let mut lines = vec![
        format!("-h {}", o.host),
        format!("-p {}", o.port),
        format!("-i {}", o.client_id),
        "-c".to_string(),
        "-q 1".to_string(),
        "-v".to_string(),
        // Debug lines tell when the subscription is acknowledged.
        "-d".to_string(),
        format!("-t {TELEMETRY_FILTER}"),
    ];
    if o.tls {
        match &o.ca_file {
            Some(ca) => lines.push(format!("--cafile {}", ca.display())),
            None => lines.push("--capath /etc/ssl/certs".into()),
        }
    }
    if let Some(u) = &o.username {
        lines.push(format!("-u {u}"));
    }
    if let Some(p) = &o.password {
        lines.push(format!("-P {p}"));
    }
    lines.push(String::new());
    let path = dir.path().join("mosquitto_sub");
    fs::write(&path, lines.join("\n")).map_err(|e| format!("observer options file: {e}"))?;
    // The directory is 0700 (tempfile), so the password is readable by this user only.
    Ok(())
}

fn observe(binary: &PathBuf, config_home: &PathBuf, state: &State) {
    let mut first = true;
    while !state.stop.load(Ordering::Relaxed) {
        if !first {
            state.restarts.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(200));
        }
        first = false;
        // Line-buffered stdout: into a pipe, libc would hold the lines back in 4 KiB blocks.
        let spawned = Command::new("stdbuf")
            .arg("-oL")
            .arg(binary)
            .env("XDG_CONFIG_HOME", config_home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                log::error!("observer: cannot start mosquitto_sub: {e}");
                continue;
            }
        };
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            continue;
        };
        *lock(&state.child) = Some(child);
        if state.stop.load(Ordering::Relaxed) {
            break;
        }
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            record(state, &line);
        }
        if let Some(mut child) = lock(&state.child).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One output line: a debug line (`Client … received SUBACK`, `Subscribed (mid: 1): 1`) or, with
/// `-v`, `devices/<id>/telemetry {"seq":N}`.
fn record(state: &State, line: &str) {
    if line.starts_with("Subscribed (mid:") {
        state.subscribed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Some((device, seq)) = parse_telemetry(line) else {
        return;
    };
    let mut seen = lock(&state.seen);
    let new = seen
        .by_device
        .entry(device.to_string())
        .or_default()
        .insert(seq);
    if new {
        state.distinct.fetch_add(1, Ordering::Relaxed);
    } else {
        state.duplicates.fetch_add(1, Ordering::Relaxed);
    }
}

/// `devices/<id>/telemetry {"seq":N}` → `(id, N)`.
fn parse_telemetry(line: &str) -> Option<(&str, u32)> {
    let (topic, payload) = line.split_once(' ')?;
    let device = topic.strip_prefix("devices/")?.strip_suffix("/telemetry")?;
    let seq = payload
        .trim()
        .strip_prefix("{\"seq\":")?
        .strip_suffix('}')?
        .parse()
        .ok()?;
    Some((device, seq))
}

#[cfg(test)]
mod tests {
    use super::parse_telemetry;

    #[test]
    fn parses_telemetry_lines_only() {
        assert_eq!(
            parse_telemetry("devices/fleet-00007/telemetry {\"seq\":42}"),
            Some(("fleet-00007", 42))
        );
        assert_eq!(parse_telemetry("devices/x/state {\"seq\":1}"), None);
        assert_eq!(
            parse_telemetry("Client o received PUBLISH (d0, q1, r0, m3, 'devices/x/telemetry')"),
            None
        );
        assert_eq!(parse_telemetry("devices/x/telemetry {\"seq\":-1}"), None);
    }
}
