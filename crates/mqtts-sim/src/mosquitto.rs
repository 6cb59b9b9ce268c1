//! Test harness that runs a real Mosquitto (Debian package `mosquitto`, 2.0.x) on loopback.
//!
//! Each [`Mosquitto`] owns a temporary directory holding its config, log, password file and
//! persistence data; it picks free loopback ports, waits until they accept connections and kills
//! the broker on drop. A small `sh` watchdog kills the broker too if the test process dies
//! without unwinding, so no stray brokers outlive a test run.

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long `start`/`restart` wait for the listeners to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the broker should offer.
#[derive(Debug, Clone, Default)]
pub struct MosquittoConfig {
    /// TLS listener files: CA (`cafile`), certificate and key. `None`: no TLS listener.
    pub tls: Option<TlsFiles>,
    /// Also open a plain-TCP listener (handy for `mosquitto_sub` observers).
    pub plain_listener: bool,
    /// Accounts for a `password_file`; empty means `allow_anonymous true`.
    pub users: Vec<(String, String)>,
    /// Keep sessions and retained messages in a per-instance data dir across restarts.
    pub persistence: bool,
    /// Extra config lines appended verbatim (global section, before the listeners).
    pub extra: Vec<String>,
    /// `log_type` values; empty means `all`. A big fleet logs less: `all` writes a line per
    /// message, which would dominate the broker's CPU time.
    pub log_types: Vec<String>,
}

/// PEM files for the TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA certificate (`cafile`).
    pub ca_file: PathBuf,
    /// Server certificate (`certfile`).
    pub cert_file: PathBuf,
    /// Server private key (`keyfile`).
    pub key_file: PathBuf,
}

/// Why the harness could not run Mosquitto.
#[derive(Debug)]
pub enum HarnessError {
    /// The `mosquitto` binary (or `mosquitto_passwd`) is not installed.
    NotInstalled(&'static str),
    /// A file or process operation failed.
    Io(io::Error),
    /// The broker exited or never accepted connections; the text holds its log tail.
    NotReady(String),
    /// A helper command (`mosquitto_passwd`, `kill`) failed.
    Command(String),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::NotInstalled(what) => write!(
                f,
                "{what} not found: install it with `apt-get install -y mosquitto mosquitto-clients`"
            ),
            HarnessError::Io(e) => write!(f, "mosquitto harness I/O: {e}"),
            HarnessError::NotReady(log) => write!(f, "mosquitto did not come up; log:\n{log}"),
            HarnessError::Command(e) => write!(f, "mosquitto harness command: {e}"),
        }
    }
}

impl std::error::Error for HarnessError {}

impl From<io::Error> for HarnessError {
    fn from(e: io::Error) -> Self {
        HarnessError::Io(e)
    }
}

/// Finds the `mosquitto` binary (it lives in `/usr/sbin`, often not on a user's PATH).
pub fn mosquitto_binary() -> Option<PathBuf> {
    find_binary(
        "mosquitto",
        &["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"],
    )
}

fn find_binary(name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| fallbacks.iter().map(PathBuf::from).find(|p| p.is_file()))
}

/// For tests: `true` when Mosquitto is installed. When it is missing, panics if the `CI`
/// environment variable is set (CI must fail, not skip), else prints why and returns `false`.
pub fn available_or_skip(test: &str) -> bool {
    if mosquitto_binary().is_some() {
        return true;
    }
    let msg = HarnessError::NotInstalled("mosquitto").to_string();
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {msg}");
    }
    eprintln!("SKIPPED {test}: {msg}");
    false
}

/// Picks a loopback port that is free right now (the OS chooses it).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A running Mosquitto; killed on drop.
pub struct Mosquitto {
    dir: TempDir,
    binary: PathBuf,
    tls_port: Option<u16>,
    plain_port: Option<u16>,
    child: Option<Child>,
    watchdog: Option<Child>,
    paused: bool,
}

impl fmt::Debug for Mosquitto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mosquitto")
            .field("dir", &self.dir.path())
            .field("tls_port", &self.tls_port)
            .field("plain_port", &self.plain_port)
            .field("pid", &self.pid())
            .finish()
    }
}

impl Mosquitto {
    /// Writes the config into a fresh temp dir, starts the broker and waits until every
    /// listener accepts TCP connections. Retries with new ports if one was taken meanwhile.
    pub fn start(config: &MosquittoConfig) -> Result<Self, HarnessError> {
        let binary = mosquitto_binary().ok_or(HarnessError::NotInstalled("mosquitto"))?;
        let dir = tempfile::Builder::new()
            .prefix("mqtts-mosquitto-")
            .tempdir()?;
        let mut broker = Mosquitto {
            dir,
            binary,
            tls_port: None,
            plain_port: None,
            child: None,
            watchdog: None,
            paused: false,
        };
        if !config.users.is_empty() {
            broker.write_password_file(&config.users)?;
        }
        if config.persistence {
            fs::create_dir_all(broker.data_dir())?;
        }
        let mut last = None;
        for _ in 0..3 {
            broker.tls_port = config.tls.as_ref().map(|_| free_port()).transpose()?;
            broker.plain_port = if config.plain_listener {
                Some(free_port()?)
            } else {
                None
            };
            broker.write_config(config)?;
            match broker.spawn() {
                Ok(()) => return Ok(broker),
                // Most likely a port race with another test: pick new ports.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::NotReady(String::new())))
    }

    /// The TLS listener's port on 127.0.0.1.
    ///
    /// # Panics
    /// If the config had no TLS listener.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
            .expect("mosquitto started without a TLS listener")
    }

    /// The plain listener's port, if configured.
    pub fn plain_port(&self) -> Option<u16> {
        self.plain_port
    }

    /// The per-instance directory (config, log, password file, `data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `true` while the broker process is alive (also when paused).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The broker's log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the broker at once (SIGKILL): no persistence save, connections reset.
    pub fn kill(&mut self) {
        self.stop_watchdog();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Stops the broker gracefully (SIGTERM; it saves persistence), SIGKILL after 5 s.
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        self.stop_watchdog();
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if self.paused {
            // A stopped process cannot handle SIGTERM until continued.
            let _ = signal(child.id(), "-CONT");
            self.paused = false;
        }
        signal(child.id(), "-TERM")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    /// Stops gracefully and starts again on the same ports with the same data dir.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop()?;
        // The old listening sockets are closed; nothing else binds these loopback ports in a
        // test run, so a short retry covers the kernel's release.
        let mut last = None;
        for _ in 0..5 {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = Some(e);
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::NotReady(String::new())))
    }

    /// Freezes the broker (SIGSTOP): TCP stays open but nothing is answered.
    pub fn pause(&mut self) -> Result<(), HarnessError> {
        let pid = self
            .pid()
            .ok_or_else(|| HarnessError::Command("not running".into()))?;
        signal(pid, "-STOP")?;
        self.paused = true;
        Ok(())
    }

    /// Resumes a paused broker (SIGCONT).
    pub fn resume(&mut self) -> Result<(), HarnessError> {
        let pid = self
            .pid()
            .ok_or_else(|| HarnessError::Command("not running".into()))?;
        signal(pid, "-CONT")?;
        self.paused = false;
        Ok(())
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn password_path(&self) -> PathBuf {
        self.dir.path().join("passwords")
    }

    fn write_password_file(&self, users: &[(String, String)]) -> Result<(), HarnessError> {
        let tool = find_binary("mosquitto_passwd", &["/usr/bin/mosquitto_passwd"])
            .ok_or(HarnessError::NotInstalled("mosquitto_passwd"))?;
        let path = self.password_path();
        fs::write(&path, "")?;
        for (user, password) in users {
            // Test-only credentials: passing them on the command line is acceptable here.
            let out = Command::new(&tool)
                .arg("-b")
                .arg(&path)
                .arg(user)
                .arg(password)
                .stdin(Stdio::null())
                .output()?;
            if !out.status.success() {
                return Err(HarnessError::Command(format!(
                    "mosquitto_passwd for {user:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        Ok(())
    }

    fn write_config(&self, config: &MosquittoConfig) -> Result<(), HarnessError> {
        let mut lines = vec![
            // Running as root, Mosquitto would switch to user `mosquitto`, which cannot read
            // our 0700 temp dir; stay as the invoking user instead.
            "user root".to_string(),
            "per_listener_settings false".to_string(),
            format!("log_dest file {}", self.log_path().display()),
            "connection_messages true".to_string(),
        ];
        if config.log_types.is_empty() {
            lines.push("log_type all".into());
        }
        lines.extend(config.log_types.iter().map(|t| format!("log_type {t}")));
        if config.users.is_empty() {
            lines.push("allow_anonymous true".into());
        } else {
            lines.push("allow_anonymous false".into());
            lines.push(format!("password_file {}", self.password_path().display()));
        }
        if config.persistence {
            lines.push("persistence true".into());
            // The trailing slash is required: Mosquitto concatenates this with the file name.
            lines.push(format!(
                "persistence_location {}/",
                self.data_dir().display()
            ));
        }
        lines.extend(config.extra.iter().cloned());
        if let (Some(tls), Some(port)) = (&config.tls, self.tls_port) {
            lines.push(format!("listener {port} 127.0.0.1"));
            lines.push(format!("cafile {}", tls.ca_file.display()));
            lines.push(format!("certfile {}", tls.cert_file.display()));
            lines.push(format!("keyfile {}", tls.key_file.display()));
            lines.push("require_certificate false".into());
        }
        if let Some(port) = self.plain_port {
            lines.push(format!("listener {port} 127.0.0.1"));
        }
        lines.push(String::new());
        fs::write(self.config_path(), lines.join("\n"))?;
        Ok(())
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        self.child = Some(child);
        self.watchdog = spawn_watchdog(pid).ok();
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.kill();
                Err(e)
            }
        }
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let ports: Vec<u16> = self.tls_port.into_iter().chain(self.plain_port).collect();
        let deadline = Instant::now() + READY_TIMEOUT;
        for port in ports {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            loop {
                if let Some(child) = self.child.as_mut() {
                    if let Some(status) = child.try_wait()? {
                        return Err(HarnessError::NotReady(format!(
                            "exited with {status}\n{}",
                            self.log()
                        )));
                    }
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(HarnessError::NotReady(format!(
                        "port {port} not accepting after {READY_TIMEOUT:?}\n{}",
                        self.log()
                    )));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        // SIGKILL also ends a SIGSTOPped process.
        self.kill();
    }
}

/// Sends a signal with the `kill` command (no `unsafe` outside the Zephyr FFI layer).
fn signal(pid: u32, sig: &str) -> Result<(), HarnessError> {
    let status = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::Command(format!("kill {sig} {pid} failed")))
    }
}

/// Kills `pid` once this test process is gone. The broker stays our unreaped child until
/// `kill()` waits for it, so its pid cannot be reused while the watchdog looks at it.
fn spawn_watchdog(pid: u32) -> io::Result<Child> {
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         kill -9 {pid} 2>/dev/null",
        me = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}
