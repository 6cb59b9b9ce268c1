//! `mqtts-sim dashboard`: a web page showing every self-hosted device on a broker, with a
//! toggle per switch.
//!
//! - The platform end is a [`PlatformClient`] (rumqttc) subscribed to `devices/+/status`,
//!   `devices/+/state` and `devices/+/reply`. What it sees is folded into a [`Board`] (sans-IO:
//!   messages and the time in, a snapshot out), which the page receives as server-sent events.
//! - A click POSTs `{"device","switch","on"}` to `/api/set`; the server publishes a `set`
//!   command with a fresh id and tracks it: `ok` or the error code when the reply arrives,
//!   `confirmed` when a state report shows the new level, `timed_out` when no reply came in
//!   [`DashboardOptions::command_timeout`].
//! - Access: binds to loopback unless a token is given; with a token every request (page,
//!   events, commands) must carry it (`?token=` on GETs, `Authorization: Bearer` on the POST),
//!   compared in constant time. Without a token, the `Host` header must name the loopback
//!   listener (no DNS rebinding). POSTs must be `application/json` from the same origin (no
//!   cross-site form posts). Nothing of the broker login or any device secret is in a
//!   snapshot; the page renders every value with `textContent`, under a CSP that allows only
//!   its own inline script and style (by hash).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use crate::platform::{PlatformClient, PlatformEvent, PlatformOptions, QoS};
use crate::sim_device::XorShift;

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/app.css");

/// Commands kept per device (newest first).
pub const COMMANDS_KEPT: usize = 8;
/// Devices tracked at most; status/state of further ids is ignored (a bounded view of a
/// broker that anyone may publish to).
pub const MAX_DEVICES: usize = 10_000;
/// Shortest token accepted from `--token-file`.
pub const MIN_TOKEN_LEN: usize = 16;

/// How the dashboard runs.
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    /// Broker connection of the platform client (its subscriptions are added here).
    pub platform: PlatformOptions,
    /// Listen address; loopback unless `token` is set.
    pub listen: SocketAddr,
    /// Access token every request must carry; required for a non-loopback `listen`.
    pub token: Option<String>,
    /// How long a command may wait for its reply before it is shown as timed out.
    pub command_timeout: Duration,
}

/// Why the dashboard did not start.
#[derive(Debug)]
pub enum DashboardError {
    /// `--listen` is not loopback and there is no token.
    TokenRequired(SocketAddr),
    /// The token is too short.
    WeakToken,
    /// The platform client could not start (bad CA file...).
    Platform(crate::platform::PlatformError),
    /// The listener could not be bound or the server threads started.
    Io(String),
}

impl std::fmt::Display for DashboardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DashboardError::TokenRequired(a) => write!(
                f,
                "option `--listen`: {a} is not a loopback address; give --token-file FILE so that every request must carry the token"
            ),
            DashboardError::WeakToken => write!(
                f,
                "option `--token-file`: the token must be at least {MIN_TOKEN_LEN} characters"
            ),
            DashboardError::Platform(e) => write!(f, "{e}"),
            DashboardError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DashboardError {}

/// What became of a command sent from the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent, no reply yet.
    Pending,
    /// The device replied `ok`.
    Ok,
    /// The device refused it with this error code.
    Refused(String),
    /// No reply within the command timeout.
    TimedOut,
}

/// One command sent from the page.
#[derive(Debug, Clone)]
pub struct CommandView {
    /// The command id sent in the payload.
    pub id: String,
    /// Switch name.
    pub switch: String,
    /// Requested level.
    pub on: bool,
    /// When it was sent.
    pub sent: Instant,
    /// Reply so far.
    pub outcome: Outcome,
    /// A state report after an `ok` reply shows the requested level.
    pub confirmed: bool,
}

/// Everything known about one device.
#[derive(Debug, Clone, Default)]
pub struct DeviceView {
    /// `Some(true)` after `online`, `Some(false)` after `offline` (the will), `None` unknown.
    pub online: Option<bool>,
    /// Switches of the latest state report, in its order.
    pub switches: Vec<(String, bool)>,
    /// Uptime of the latest state report.
    pub uptime_s: Option<u64>,
    /// Reconnect count of the latest state report.
    pub reconnects: Option<u64>,
    /// Last failure of the latest state report.
    pub last_failure: Option<String>,
    /// Commands sent from the dashboard, newest first.
    pub commands: VecDeque<CommandView>,
}

/// The dashboard's model: MQTT messages in, a JSON snapshot out. No I/O, time passed in.
#[derive(Debug)]
pub struct Board {
    devices: BTreeMap<String, DeviceView>,
    broker: Result<(), String>,
    timeout: Duration,
    nonce: u32,
    next: u64,
}

/// The `devices/{id}/{leaf}` split of a topic (exactly three levels).
fn split_topic(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix("devices/")?;
    let (id, leaf) = rest.split_once('/')?;
    (!id.is_empty() && !leaf.contains('/')).then_some((id, leaf))
}

/// A string usable as one topic level in a PUBLISH (no wildcards, separators or NUL).
fn is_topic_level(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.contains(['/', '+', '#', '\0'])
}

impl Board {
    /// An empty board; commands time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Board {
            devices: BTreeMap::new(),
            broker: Err("connecting".into()),
            timeout,
            nonce: XorShift::from_time().next_u32(),
            next: 1,
        }
    }

    /// The device `id`, if known.
    pub fn device(&self, id: &str) -> Option<&DeviceView> {
        self.devices.get(id)
    }

    fn device_mut(&mut self, id: &str) -> Option<&mut DeviceView> {
        if !self.devices.contains_key(id) && self.devices.len() >= MAX_DEVICES {
            return None;
        }
        Some(self.devices.entry(id.to_string()).or_default())
    }

    /// Folds one platform event in; `true` when the snapshot changed.
    pub fn apply(&mut self, event: &PlatformEvent) -> bool {
        match event {
            PlatformEvent::Online { .. } => self.broker = Ok(()),
            PlatformEvent::Offline { error } => self.broker = Err(error.clone()),
            PlatformEvent::Message(m) => {
                let Some((id, leaf)) = split_topic(&m.topic) else {
                    return false;
                };
                match leaf {
                    "status" => self.on_status(id, &m.payload),
                    "state" => self.on_state(id, m.json()),
                    "reply" => self.on_reply(id, m.json()),
                    _ => return false,
                }
            }
            PlatformEvent::Subscribed(_) | PlatformEvent::Delivered(_) => return false,
        }
        true
    }

    fn on_status(&mut self, id: &str, payload: &[u8]) {
        // An empty retained message clears the status (the device was deregistered).
        let online = match payload {
            b"online" => Some(true),
            b"offline" => Some(false),
            _ => None,
        };
        if payload.is_empty() && !self.devices.contains_key(id) {
            return;
        }
        if let Some(d) = self.device_mut(id) {
            d.online = online;
        }
    }

    fn on_state(&mut self, id: &str, state: Option<Value>) {
        let Some(state) = state else { return };
        let Some(d) = self.device_mut(id) else { return };
        if let Some(switches) = state["switches"].as_object() {
            d.switches = switches
                .iter()
                .map(|(k, v)| (k.clone(), v.as_bool().unwrap_or(false)))
                .collect();
        }
        d.uptime_s = state["uptime_s"].as_u64();
        d.reconnects = state["reconnects"].as_u64();
        d.last_failure = match &state["last_failure"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        for c in d.commands.iter_mut() {
            if c.outcome == Outcome::Ok
                && d.switches
                    .iter()
                    .any(|(n, on)| *n == c.switch && *on == c.on)
            {
                c.confirmed = true;
            }
        }
    }

    fn on_reply(&mut self, id: &str, reply: Option<Value>) {
        let Some(reply) = reply else { return };
        let Some(d) = self.devices.get_mut(id) else {
            return;
        };
        let Some(c) = d
            .commands
            .iter_mut()
            .find(|c| reply["id"].as_str() == Some(c.id.as_str()))
        else {
            return;
        };
        c.outcome = if reply["ok"] == Value::Bool(true) {
            Outcome::Ok
        } else {
            Outcome::Refused(reply["error"].as_str().unwrap_or("unknown_error").into())
        };
    }

    /// Records a new command for `device` and returns `(topic, payload, id)` to publish.
    pub fn command(
        &mut self,
        now: Instant,
        device: &str,
        switch: &str,
        on: bool,
    ) -> Result<(String, String, String), &'static str> {
        if !is_topic_level(device) {
            return Err("device: not a valid topic level");
        }
        if switch.is_empty() || switch.len() > 64 {
            return Err("switch: 1..=64 characters");
        }
        let nonce = self.nonce;
        let n = self.next;
        let Some(d) = self.devices.get_mut(device) else {
            return Err("device: unknown");
        };
        self.next += 1;
        let id = format!("web-{nonce:08x}-{n}");
        d.commands.push_front(CommandView {
            id: id.clone(),
            switch: switch.into(),
            on,
            sent: now,
            outcome: Outcome::Pending,
            confirmed: false,
        });
        d.commands.truncate(COMMANDS_KEPT);
        let payload = json!({"id": id, "switch": switch, "on": on}).to_string();
        Ok((format!("devices/{device}/set"), payload, id))
    }

    /// Marks commands without a reply for longer than the timeout; `true` when any changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for d in self.devices.values_mut() {
            for c in d.commands.iter_mut() {
                if c.outcome == Outcome::Pending && now.duration_since(c.sent) >= self.timeout {
                    c.outcome = Outcome::TimedOut;
                    changed = true;
                }
            }
        }
        changed
    }

    /// What the page shows, as JSON (no credentials in it).
    pub fn snapshot(&self) -> Value {
        let devices: Vec<Value> = self
            .devices
            .iter()
            .map(|(id, d)| {
                let commands: Vec<Value> = d
                    .commands
                    .iter()
                    .map(|c| {
                        let (outcome, error) = match &c.outcome {
                            Outcome::Pending => ("pending", None),
                            Outcome::Ok => ("ok", None),
                            Outcome::Refused(e) => ("error", Some(e.as_str())),
                            Outcome::TimedOut => ("timed_out", None),
                        };
                        json!({"id": c.id, "switch": c.switch, "on": c.on,
                               "outcome": outcome, "error": error, "confirmed": c.confirmed})
                    })
                    .collect();
                json!({
                    "id": id,
                    "online": d.online,
                    "switches": d.switches.iter().map(|(n, on)| json!({"name": n, "on": on})).collect::<Vec<_>>(),
                    "uptime_s": d.uptime_s,
                    "reconnects": d.reconnects,
                    "last_failure": d.last_failure,
                    "commands": commands,
                })
            })
            .collect();
        json!({
            "broker": match &self.broker { Ok(()) => Value::Null, Err(e) => Value::String(e.clone()) },
            "devices": devices,
        })
    }
}

/// `a == b` in time that depends only on the lengths (the token's length is not secret).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Shared between the HTTP handlers and the MQTT pump.
struct Shared {
    board: Mutex<Board>,
    version: watch::Sender<u64>,
    mqtt: rumqttc::AsyncClient,
    token: Option<String>,
    /// `Host` header values accepted without a token (loopback listener).
    hosts: Vec<String>,
    page: String,
    csp: String,
}

impl Shared {
    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Access check common to every request; `Err` is the refusal to send.
    fn admit(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Result<(), (StatusCode, &'static str)> {
        match &self.token {
            Some(expected) => {
                if !token.is_some_and(|t| same_secret(t.as_bytes(), expected.as_bytes())) {
                    return Err((StatusCode::UNAUTHORIZED, "token required\n"));
                }
            }
            None => {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
                if !host.is_some_and(|h| self.hosts.iter().any(|a| a == h)) {
                    return Err((StatusCode::MISDIRECTED_REQUEST, "unexpected Host header\n"));
                }
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
struct SetRequest {
    device: String,
    switch: String,
    on: bool,
}

fn security_headers(mut r: Response, csp: &str) -> Response {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn page(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let r = match s.admit(&headers, q.token.as_deref()) {
        Ok(()) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            s.page.clone(),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    };
    security_headers(r, &s.csp)
}

async fn events(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Err(refusal) = s.admit(&headers, q.token.as_deref()) {
        return security_headers(refusal.into_response(), &s.csp);
    }
    let rx = s.version.subscribe();
    let stream = futures_util::stream::unfold((s, rx, true), |(s, mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        rx.mark_unchanged();
        let data = lock(&s.board).snapshot().to_string();
        Some((
            Ok::<_, Infallible>(SseEvent::default().data(data)),
            (s, rx, false),
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn set(State(s): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    if let Err(refusal) = s.admit(&headers, bearer) {
        return refusal.into_response();
    }
    // JSON only: a cross-site page cannot send it without a CORS preflight we never answer.
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json_type {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json\n",
        )
            .into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if origin.to_str().ok() != Some(format!("http://{host}").as_str()) {
            return (StatusCode::FORBIDDEN, "cross-origin request refused\n").into_response();
        }
    }
    let req: SetRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("body: {e}\n")).into_response(),
    };
    let sent = lock(&s.board).command(Instant::now(), &req.device, &req.switch, req.on);
    let (topic, payload, id) = match sent {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    s.bump();
    if let Err(e) = s
        .mqtt
        .publish(topic, QoS::AtLeastOnce, false, payload.into_bytes())
        .await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("publish: {e}\n")).into_response();
    }
    (StatusCode::ACCEPTED, Json(json!({"id": id}))).into_response()
}

fn sha256_b64(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// A running dashboard. Dropping it stops the server and the platform client.
pub struct Dashboard {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    token_set: bool,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Checks the options, binds the listener, connects the platform client and serves.
    pub fn start(options: DashboardOptions) -> Result<Dashboard, DashboardError> {
        if options.token.is_none() && !options.listen.ip().is_loopback() {
            return Err(DashboardError::TokenRequired(options.listen));
        }
        if options
            .token
            .as_ref()
            .is_some_and(|t| t.chars().count() < MIN_TOKEN_LEN)
        {
            return Err(DashboardError::WeakToken);
        }
        let platform = options
            .platform
            .clone()
            .subscribe("devices/+/status", QoS::AtLeastOnce)
            .subscribe("devices/+/state", QoS::AtLeastOnce)
            .subscribe("devices/+/reply", QoS::AtLeastOnce);
        let client = PlatformClient::start(platform).map_err(DashboardError::Platform)?;
        let listener = std::net::TcpListener::bind(options.listen).map_err(|e| {
            DashboardError::Io(format!("option `--listen`: {}: {e}", options.listen))
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| DashboardError::Io(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DashboardError::Io(e.to_string()))?;
        let port = addr.port();
        let html = PAGE
            .replace("/*STYLE*/", STYLE)
            .replace("/*SCRIPT*/", SCRIPT);
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            sha256_b64(SCRIPT),
            sha256_b64(STYLE)
        );
        let (version, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            board: Mutex::new(Board::new(options.command_timeout)),
            version,
            mqtt: client.handle(),
            token: options.token.clone(),
            hosts: vec![
                addr.to_string(),
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::1]:{port}"),
            ],
            page: html,
            csp,
        });

        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (pump_stop_tx, pump_stop_rx) = std::sync::mpsc::channel::<()>();
        let pump_shared = shared.clone();
        let pump = thread::Builder::new()
            .name("dashboard-mqtt".into())
            .spawn(move || pump_events(client, pump_shared, pump_stop_rx))
            .map_err(|e| DashboardError::Io(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| DashboardError::Io(e.to_string()))?;
        let app = Router::new()
            .route("/", get(page))
            .route("/events", get(events))
            .route("/api/set", post(set))
            .with_state(shared);
        let server = thread::Builder::new()
            .name("dashboard-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        log::error!("dashboard: cannot register the listener");
                        return;
                    };
                    tokio::select! {
                        r = axum::serve(listener, app) => {
                            if let Err(e) = r { log::error!("dashboard: server: {e}"); }
                        }
                        _ = stop_rx => {}
                    }
                });
                // Open event streams end with the runtime.
                runtime.shutdown_timeout(Duration::from_secs(1));
                let _ = pump_stop_tx.send(());
            })
            .map_err(|e| DashboardError::Io(e.to_string()))?;
        Ok(Dashboard {
            addr,
            stop: Some(stop_tx),
            threads: vec![server, pump],
            token_set: options.token.is_some(),
        })
    }

    /// The bound address (port 0 in the options picks a free one).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL, without the token (it is a secret; append `?token=...` yourself).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Whether requests must carry a token.
    pub fn token_required(&self) -> bool {
        self.token_set
    }

    /// Stops serving and disconnects from the broker.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Moves platform events into the board and expires commands, until `stop`.
fn pump_events(client: PlatformClient, shared: Arc<Shared>, stop: std::sync::mpsc::Receiver<()>) {
    loop {
        if !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)) {
            break;
        }
        let event = client.next_event(Duration::from_millis(100));
        let mut board = lock(&shared.board);
        let mut changed = board.expire(Instant::now());
        if let Some(e) = &event {
            changed |= board.apply(e);
        }
        drop(board);
        if changed {
            shared.bump();
        }
    }
    client.stop();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Message;

    fn msg(topic: &str, payload: &str) -> PlatformEvent {
        PlatformEvent::Message(Message {
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
            qos: QoS::AtLeastOnce,
            retain: false,
            dup: false,
        })
    }

    #[test]
    fn status_state_reply_and_timeout() {
        let t0 = Instant::now();
        let mut b = Board::new(Duration::from_secs(5));
        assert!(
            b.command(t0, "d1", "Relay1", true).is_err(),
            "unknown device"
        );
        assert!(b.apply(&msg("devices/d1/status", "online")));
        assert!(b.apply(&msg(
            "devices/d1/state",
            r#"{"switches":{"Relay1":false,"LED":true},"uptime_s":7,"reconnects":2,"last_failure":"peer_closed"}"#
        )));
        let d = b.device("d1").unwrap();
        assert_eq!(d.online, Some(true));
        assert_eq!(
            d.switches,
            [("Relay1".to_string(), false), ("LED".to_string(), true)]
        );
        assert_eq!((d.uptime_s, d.reconnects), (Some(7), Some(2)));
        assert_eq!(d.last_failure.as_deref(), Some("peer_closed"));

        let (topic, payload, id) = b.command(t0, "d1", "Relay1", true).unwrap();
        assert_eq!(topic, "devices/d1/set");
        let v: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v, json!({"id": id, "switch": "Relay1", "on": true}));
        let (_, _, id2) = b.command(t0, "d1", "Pump", true).unwrap();
        assert_ne!(id, id2, "fresh ids");
        let (_, _, id3) = b.command(t0, "d1", "LED", false).unwrap();

        b.apply(&msg(
            "devices/d1/reply",
            &json!({"id": id, "ok": true}).to_string(),
        ));
        b.apply(&msg(
            "devices/d1/reply",
            &json!({"id": id2, "ok": false, "error": "unknown_switch"}).to_string(),
        ));
        b.apply(&msg(
            "devices/d1/state",
            r#"{"switches":{"Relay1":true,"LED":true},"uptime_s":8,"reconnects":2,"last_failure":null}"#,
        ));
        assert!(!b.expire(t0 + Duration::from_secs(4)));
        assert!(b.expire(t0 + Duration::from_secs(5)));
        let snap = b.snapshot();
        let cmds = &snap["devices"][0]["commands"];
        assert_eq!(cmds[0]["id"], id3.as_str());
        assert_eq!(cmds[0]["outcome"], "timed_out");
        assert_eq!(cmds[1]["outcome"], "error");
        assert_eq!(cmds[1]["error"], "unknown_switch");
        assert_eq!(cmds[2]["outcome"], "ok");
        assert_eq!(cmds[2]["confirmed"], true);
        assert_eq!(snap["devices"][0]["last_failure"], Value::Null);

        assert!(b.apply(&msg("devices/d1/status", "offline")));
        assert_eq!(b.device("d1").unwrap().online, Some(false));
    }

    #[test]
    fn foreign_topics_and_bad_ids_are_ignored_or_refused() {
        let mut b = Board::new(Duration::from_secs(5));
        assert!(!b.apply(&msg("devices/d1/sub/state", "{}")));
        assert!(!b.apply(&msg("other/d1/state", "{}")));
        assert!(!b.apply(&msg("devices//state", "{}")));
        b.apply(&msg("devices/a+b/status", "online"));
        assert!(b.command(Instant::now(), "a+b", "X", true).is_err());
        assert!(b.command(Instant::now(), "x/y", "X", true).is_err());
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret(b"abcdef", b"abcdef"));
        assert!(!same_secret(b"abcdef", b"abcdeg"));
        assert!(!same_secret(b"abc", b"abcdef"));
    }
}
