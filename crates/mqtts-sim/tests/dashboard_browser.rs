//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! started here on a free loopback port) against a real Mosquitto over TLS and simulated
//! devices (the core `Device`). The dashboard's platform end is rumqttc.
//!
//! It proves: a device appears online; a toggle click switches the simulated output and the
//! page shows the new state; a refused command shows its error; killing a device process turns
//! it offline and a command to it times out; a device id and values containing HTML render as
//! text; requests without the token are refused. A screenshot goes to `$CARGO_TARGET_TMPDIR/dashboard.png`, or to
//! `docs/dashboard.png` with `UPDATE_SCREENSHOT=1`.
//!
//! Skips (with a message) when Chromium or chromedriver is missing, except under CI (`CI`
//! set), where it fails.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::e2e::*;
use fantoccini::{Client, ClientBuilder, Locator};
use mqtts_sim::dashboard::{Dashboard, DashboardOptions};
use mqtts_sim::mosquitto::{self, MosquittoConfig};
use mqtts_sim::platform::QoS;
use mqtts_sim::sim_device::SimDevice;
use serde_json::{json, Value};

/// Short, so the unanswered command below times out quickly (a late reply still counts).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(4);
const TOKEN: &str = "browser-test-token-0123456789";
/// A device id that would run script if it were inserted as HTML.
const EVIL_ID: &str = "<script>window.pwned=2<script><img src=x onerror=window.pwned=1>";

fn find_binary(names: &[&str], fallbacks: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// `(chromium, chromedriver)`, or `None` after printing why the test is skipped. Under CI a
/// missing browser fails the test.
fn browser_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = find_binary(
        &["chromium", "chromium-browser"],
        &["/usr/bin/chromium", "/usr/lib/chromium/chromium"],
    );
    let driver = find_binary(&["chromedriver"], &["/usr/lib/chromium/chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let msg = "Chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)";
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {msg}");
            }
            eprintln!("SKIPPED {test}: {msg}");
            None
        }
    }
}

/// A chromedriver process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(binary: &Path) -> Driver {
        let port = mosquitto::free_port().unwrap();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, port };
        let deadline = Instant::now() + STEP;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulated device in its own `mqtts-sim run` process, so it can be killed (SIGKILL: no
/// DISCONNECT, the broker publishes its will).
struct DeviceProcess(Child);

impl DeviceProcess {
    fn start(dir: &Path, port: u16, ca: &Path, id: &str) -> DeviceProcess {
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "profile = \"self-hosted\"\nbroker_host = \"localhost\"\nbroker_port = {port}\n\
                 device_id = \"{id}\"\nca_file = \"{}\"\nbackoff_min_ms = 200\nbackoff_max_ms = 1000\n\
                 telemetry_period_s = 0\nswitches = [\"Pump\"]\n",
                ca.display()
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mqtts-sim"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("MQTTS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        DeviceProcess(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for DeviceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Status code of a raw HTTP/1.1 request to the dashboard.
fn http_status(addr: SocketAddr, request: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"))
}

/// What the page shows, read from the DOM (text as rendered).
const READ_PAGE: &str = r#"
return {
  broker: document.getElementById('broker').textContent,
  notice: document.getElementById('notice').textContent,
  pwned: window.pwned === undefined ? null : window.pwned,
  images: document.querySelectorAll('img').length,
  scripts: document.querySelectorAll('script').length,
  devices: Array.from(document.querySelectorAll('section.device')).map(c => ({
    id: c.querySelector('.device-id').textContent,
    status: c.querySelector('.status').textContent,
    toggles: Array.from(c.querySelectorAll('button.toggle')).map(b => ({
      name: b.dataset.switch, on: b.getAttribute('aria-checked') === 'true', text: b.textContent })),
    last_failure: c.querySelector('.last-failure').textContent,
    commands: Array.from(c.querySelectorAll('tr.command')).map(r => ({
      id: r.dataset.id, outcome: r.dataset.outcome, text: r.querySelector('.outcome').textContent })),
  })),
};
"#;

/// Ends the WebDriver session (and so the browser) also when an assertion fails: killing
/// chromedriver alone would leave Chromium running.
struct Session<'a> {
    rt: &'a tokio::runtime::Runtime,
    client: Client,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.client.clone().close());
    }
}

struct Page<'a> {
    rt: &'a tokio::runtime::Runtime,
    client: &'a Client,
}

impl Page<'_> {
    fn read(&self) -> Value {
        self.rt
            .block_on(self.client.execute(READ_PAGE, vec![]))
            .unwrap()
    }

    /// Polls the page until `pick` accepts it; panics with the last view otherwise.
    fn wait<T>(&self, what: &str, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + STEP;
        loop {
            let view = self.read();
            if let Some(t) = pick(&view) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "page never showed {what}; last view: {view:#}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks a real element (re-found on each try: the page re-renders on every update).
    fn click(&self, css: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let r = self.rt.block_on(async {
                let e = self.client.find(Locator::Css(css)).await?;
                e.click().await
            });
            match r {
                Ok(()) => return,
                Err(e) => assert!(Instant::now() < deadline, "cannot click {css}: {e}"),
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn device<'v>(view: &'v Value, id: &str) -> Option<&'v Value> {
    view["devices"].as_array()?.iter().find(|d| d["id"] == id)
}

#[test]
fn dashboard_in_a_real_browser() {
    const TEST: &str = "dashboard_in_a_real_browser";
    if !mosquitto::available_or_skip(TEST) {
        return;
    }
    let Some((chromium, chromedriver)) = browser_or_skip(TEST) else {
        return;
    };
    let (dir, pki) = pki();
    let broker = mosquitto(MosquittoConfig {
        tls: Some(tls_files(&pki)),
        ..Default::default()
    });
    let port = broker.tls_port();

    let dashboard = Dashboard::start(DashboardOptions {
        platform: platform_options(port, &pki.ca_file, "dashboard"),
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(TOKEN.into()),
        command_timeout: COMMAND_TIMEOUT,
    })
    .unwrap();
    let addr = dashboard.local_addr();

    // Without the token, the page, the event stream and the command endpoint refuse.
    let host = format!("Host: {addr}\r\nConnection: close\r\n");
    assert_eq!(
        http_status(addr, &format!("GET / HTTP/1.1\r\n{host}\r\n")),
        401
    );
    assert_eq!(
        http_status(addr, &format!("GET /?token=wrong HTTP/1.1\r\n{host}\r\n")),
        401
    );
    assert_eq!(
        http_status(addr, &format!("GET /events HTTP/1.1\r\n{host}\r\n")),
        401
    );
    let body = r#"{"device":"d1","switch":"Relay1","on":true}"#;
    let post = |auth: &str| {
        format!(
            "POST /api/set HTTP/1.1\r\n{host}{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(http_status(addr, &post("")), 401);
    assert_eq!(
        http_status(
            addr,
            &post("Authorization: Bearer wrong-token-wrong-token\r\n")
        ),
        401
    );
    // A GET cannot send a command.
    assert_eq!(
        http_status(
            addr,
            &format!("GET /api/set?token={TOKEN} HTTP/1.1\r\n{host}\r\n")
        ),
        405
    );
    assert_eq!(
        http_status(addr, &format!("GET /?token={TOKEN} HTTP/1.1\r\n{host}\r\n")),
        200
    );

    // Devices: d1 in this process (its outputs are inspected), d2 in its own process (to be
    // killed), and a hostile retained status/state whose id and values hold HTML.
    let d1 = SimDevice::start(device_config(port, &pki.ca_file, "d1"), false).unwrap();
    wait_device_ready(&d1);
    let mut d2 = DeviceProcess::start(dir.path(), port, &pki.ca_file, "d2");
    let evil = platform(platform_options(port, &pki.ca_file, "evil"));
    evil.publish(
        &format!("devices/{EVIL_ID}/status"),
        b"online",
        QoS::AtLeastOnce,
        true,
    )
    .unwrap();
    let evil_state = json!({"switches": {"<b onmouseover=window.pwned=3>x</b>": false},
                            "uptime_s": 1, "reconnects": 0,
                            "last_failure": "<img src=y onerror=window.pwned=4>"});
    evil.publish(
        &format!("devices/{EVIL_ID}/state"),
        evil_state.to_string().as_bytes(),
        QoS::AtLeastOnce,
        true,
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let client = rt
        .block_on(
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{}", driver.port)),
        )
        .expect("WebDriver session");
    let session = Session {
        rt: &rt,
        client: client.clone(),
    };
    let page = Page {
        rt: &rt,
        client: &client,
    };

    // The browser without the token gets nothing but the refusal.
    rt.block_on(client.goto(&dashboard.url())).unwrap();
    let text = rt
        .block_on(client.execute("return document.body.innerText", vec![]))
        .unwrap();
    assert_eq!(text.as_str().map(str::trim), Some("token required"));

    rt.block_on(client.goto(&format!("{}?token={TOKEN}", dashboard.url())))
        .unwrap();

    // 1. The devices appear online with their switches.
    page.wait("d1 and d2 online", |v| {
        let d1 = device(v, "d1")?;
        let d2 = device(v, "d2")?;
        (d1["status"] == "online"
            && d1["toggles"].as_array()?.len() == 2
            && d2["status"] == "online")
            .then_some(())
    });
    let view = page.read();
    assert_eq!(view["broker"], "broker: connected");
    let d1_view = device(&view, "d1").unwrap();
    assert_eq!(d1_view["toggles"][0]["name"], "Relay1");
    assert_eq!(d1_view["toggles"][0]["on"], false);
    assert_eq!(d1_view["last_failure"], "none");

    // 2. A click switches the simulated output; the page shows the reply and the new state.
    page.click("section.device[data-device='d1'] button.toggle[data-switch='Relay1']");
    let deadline = Instant::now() + STEP;
    while d1.outputs().states != [true, false] {
        assert!(
            Instant::now() < deadline,
            "output not switched: {:?}",
            d1.outputs()
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(d1.outputs().changes, [(0, true)]);
    let command = page.wait("Relay1 on, confirmed", |v| {
        let d = device(v, "d1")?;
        let c = d["commands"].get(0)?;
        (d["toggles"][0]["on"] == true
            && d["toggles"][0]["text"] == "Relay1: ON"
            && c["outcome"] == "ok"
            && c["text"] == "ok, confirmed by state")
            .then(|| c.clone())
    });
    assert!(command["id"].as_str().unwrap().starts_with("web-"));

    // 3. A command the device refuses (through the page's own command function): the error
    //    code is shown and nothing changes.
    rt.block_on(client.execute(
        "window.dashboard.set('d1', 'Pump', true); return null;",
        vec![],
    ))
    .unwrap();
    page.wait("the refusal", |v| {
        let c = device(v, "d1")?["commands"].get(0)?.clone();
        (c["outcome"] == "error" && c["text"] == "error: unknown_switch").then_some(())
    });
    assert_eq!(d1.outputs().states, [true, false]);

    // 4. Hostile values render as text; nothing ran.
    let view = page.wait("the hostile device", |v| {
        device(v, EVIL_ID).map(|_| v.clone())
    });
    let evil_view = device(&view, EVIL_ID).unwrap();
    assert_eq!(evil_view["status"], "online");
    assert_eq!(
        evil_view["toggles"][0]["name"],
        "<b onmouseover=window.pwned=3>x</b>"
    );
    assert_eq!(
        evil_view["last_failure"],
        "<img src=y onerror=window.pwned=4>"
    );
    assert_eq!(view["pwned"], Value::Null, "injected script ran");
    assert_eq!(view["images"], 0, "an <img> was created from data");
    assert_eq!(view["scripts"], 1, "a <script> was created from data");

    // 5. Killing the device process: the broker publishes its will and the page shows it.
    d2.kill();
    page.wait("d2 offline", |v| {
        (device(v, "d2")?["status"] == "offline").then_some(())
    });
    // Its toggle is disabled; a command sent anyway gets no reply and is shown as timed out.
    let disabled = rt
        .block_on(client.execute(
            "return document.querySelector(\"section.device[data-device='d2'] button.toggle\").disabled",
            vec![],
        ))
        .unwrap();
    assert_eq!(disabled, true);
    rt.block_on(client.execute(
        "window.dashboard.set('d2', 'Pump', true); return null;",
        vec![],
    ))
    .unwrap();
    page.wait("the pending command", |v| {
        (device(v, "d2")?["commands"][0]["outcome"] == "pending").then_some(())
    });
    page.wait("the timeout", |v| {
        let c = device(v, "d2")?["commands"].get(0)?.clone();
        (c["outcome"] == "timed_out" && c["text"] == "timed out (no reply)").then_some(())
    });

    let png = rt.block_on(client.screenshot()).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let target = if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dashboard.png")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png")
    };
    std::fs::write(&target, png).unwrap();
    eprintln!("screenshot: {}", target.display());

    // Retained hostile messages are cleared so a reused broker would not keep them.
    evil.publish(
        &format!("devices/{EVIL_ID}/status"),
        b"",
        QoS::AtLeastOnce,
        true,
    )
    .unwrap();
    drop(session);
    drop(driver);
    dashboard.stop();
    d1.stop();
}
