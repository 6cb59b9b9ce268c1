//! `mqtts-sim demo`: everything in one process, no service installed.
//!
//! 1. A throwaway CA and a server certificate for `localhost` (rcgen).
//! 2. The in-process broker with a TLS listener on loopback.
//! 3. The platform side (self-hosted topics) connects and subscribes.
//! 4. A simulated device with two switches connects, verifying the broker's certificate
//!    against the throwaway CA.
//! 5. The platform switches each relay on and off; each command must be confirmed by the
//!    device's reply, its state report and the simulated output.
//! 6. An invalid command must be refused and change nothing.
//! 7. Every connection is cut; both sides reconnect and one more command must work.
//!
//! With `forever`, it then keeps toggling the switches every few seconds.

use std::io::{self, Stdout};
use std::time::{Duration, Instant};

use mqtts_core::device::DeviceEvent;
use serde_json::Value;

use crate::broker::{BrokerOptions, InProcessBroker};
use crate::host_config::{CaFiles, HostConfig};
use crate::live::LiveView;
use crate::pki::TestPki;
use crate::platform::{Message, PlatformClient, PlatformEvent, PlatformOptions, QoS};
use crate::sim_device::SimDevice;
use crate::tls_transport::TransportOptions;

/// The demo device's id.
pub const DEVICE_ID: &str = "demo-device";
/// How long each step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the demo scenario; `Err` holds the reason it failed.
pub fn run(forever: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let pki = TestPki::generate(dir.path(), &[]).map_err(|e| format!("certificates: {e}"))?;
    let mut view = LiveView::new(io::stdout());
    view.note("throwaway CA and server certificate for localhost/127.0.0.1 generated");
    let broker = InProcessBroker::start(BrokerOptions::new(pki.server.clone()))
        .map_err(|e| format!("broker: {e}"))?;
    let port = broker.tls_port();
    view.note(&format!("in-process MQTT broker: TLS on 127.0.0.1:{port}"));

    let transport = TransportOptions::tls("localhost", port, &[&pki.ca_file]);
    let topic = |leaf: &str| format!("devices/{DEVICE_ID}/{leaf}");
    let platform_options = PlatformOptions::new(transport, "demo-platform")
        .subscribe(&topic("state"), QoS::AtLeastOnce)
        .subscribe(&topic("reply"), QoS::AtLeastOnce)
        .subscribe(&topic("status"), QoS::AtLeastOnce);
    let platform =
        PlatformClient::start(platform_options).map_err(|e| format!("platform client: {e}"))?;
    if !platform.wait_ready(STEP_TIMEOUT, true) {
        return Err("the platform client did not connect to the broker".into());
    }
    view.platform(&format!(
        "connected, subscribed to {}",
        topic("{state,reply,status}")
    ));

    let config = HostConfig {
        profile: Some("self-hosted".into()),
        broker_host: Some("localhost".into()),
        broker_port: Some(port.into()),
        device_id: Some(DEVICE_ID.into()),
        ca_file: Some(CaFiles::One(pki.ca_file.display().to_string())),
        keepalive_s: Some(30),
        backoff_min_ms: Some(200),
        backoff_max_ms: Some(2_000),
        telemetry_period_s: Some(0),
        ..HostConfig::default()
    };
    let device = SimDevice::start(config, false).map_err(|e| e.to_string())?;
    view.note(&format!(
        "simulated device {DEVICE_ID} started (switches Relay1, LED; server certificate checked against the throwaway CA)"
    ));

    let mut demo = Demo {
        view,
        device,
        platform,
        set_topic: topic("set"),
        state_topic: topic("state"),
        reply_topic: topic("reply"),
        next_id: 1,
    };
    demo.platform_message(STEP_TIMEOUT, "the device's first state report", |m| {
        m.topic == demo_topic("state")
    })?;

    let names: Vec<String> = demo
        .device
        .status()
        .switches
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut confirmed = 0;
    for (index, name) in names.iter().enumerate() {
        for on in [true, false] {
            demo.switch(index, name, on)?;
            confirmed += 1;
        }
    }
    demo.invalid_command()?;

    demo.view
        .note("cutting every connection at the broker (simulated network failure)");
    broker.drop_connections();
    demo.wait_reconnected()?;
    demo.switch(0, &names[0], true)?;
    demo.switch(0, &names[0], false)?;
    confirmed += 2;
    let reconnects = demo.device.status().connections.saturating_sub(1);
    demo.view.note(&format!(
        "demo passed: {confirmed} commands confirmed by reply, state report and output; 1 invalid command refused; {reconnects} reconnect(s)"
    ));

    if forever {
        demo.view
            .note("--forever: toggling the switches every 3 s (Ctrl-C to stop)");
        let mut k = 0usize;
        loop {
            demo.pump_for(Duration::from_secs(3));
            let index = k % names.len();
            let on = (k / names.len()).is_multiple_of(2);
            demo.switch(index, &names[index], on)?;
            k = k.wrapping_add(1);
        }
    }
    // Both clients leave before the broker goes: a client still connected when it stops would
    // log the broker's close (`peer_closed`) after the success line.
    let Demo {
        device, platform, ..
    } = demo;
    device.stop();
    platform.stop();
    drop(broker);
    Ok(())
}

fn demo_topic(leaf: &str) -> String {
    format!("devices/{DEVICE_ID}/{leaf}")
}

struct Demo {
    view: LiveView<Stdout>,
    device: SimDevice,
    platform: PlatformClient,
    set_topic: String,
    state_topic: String,
    reply_topic: String,
    next_id: u32,
}

impl Demo {
    /// Prints pending device events and the state line.
    fn drain_device(&mut self) -> Vec<DeviceEvent> {
        let mut seen = Vec::new();
        while let Ok(observed) = self.device.events().try_recv() {
            self.view.device(&observed);
            seen.push(observed.event);
            let status = self.device.status();
            self.view.status(&status);
        }
        let status = self.device.status();
        self.view.status(&status);
        seen
    }

    fn show_platform_event(&mut self, event: &PlatformEvent) {
        match event {
            PlatformEvent::Message(m) => {
                let leaf = m.topic.rsplit('/').next().unwrap_or("");
                self.view.platform(&format!("got {leaf}: {}", m.text()));
            }
            PlatformEvent::Online { .. } => self.view.platform("connected"),
            PlatformEvent::Offline { error } => {
                self.view.platform(&format!("disconnected: {error}"))
            }
            PlatformEvent::Subscribed(_) => self.view.platform("subscribed"),
            PlatformEvent::Delivered(_) => {}
        }
    }

    /// Shows everything that happens for `d`.
    fn pump_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            self.drain_device();
            if let Some(event) = self.platform.next_event(Duration::from_millis(10)) {
                self.show_platform_event(&event);
            }
        }
    }

    /// Waits for a platform message `pick` accepts, showing everything meanwhile.
    fn platform_message(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&Message) -> bool,
    ) -> Result<Message, String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain_device();
            if Instant::now() > deadline {
                return Err(format!("timed out after {timeout:?} waiting for {what}"));
            }
            if let Some(event) = self.platform.next_event(Duration::from_millis(10)) {
                self.show_platform_event(&event);
                if let PlatformEvent::Message(m) = event {
                    if pick(&m) {
                        return Ok(m);
                    }
                }
            }
        }
    }

    fn command(&mut self, payload: &Value) -> Result<String, String> {
        let id = format!("demo-{}", self.next_id);
        self.next_id += 1;
        let mut payload = payload.clone();
        payload["id"] = Value::String(id.clone());
        let text = payload.to_string();
        self.view.platform(&format!("send command: {text}"));
        self.platform
            .publish(&self.set_topic, text.as_bytes(), QoS::AtLeastOnce, false)
            .map_err(|e| format!("platform publish: {e}"))?;
        Ok(id)
    }

    fn reply(&mut self, id: &str) -> Result<Value, String> {
        let reply_topic = self.reply_topic.clone();
        let m = self.platform_message(STEP_TIMEOUT, &format!("the reply to {id}"), |m| {
            m.topic == reply_topic && m.json().is_some_and(|v| v["id"] == id)
        })?;
        m.json().ok_or_else(|| "reply is not JSON".into())
    }

    /// Sets one switch and checks reply, state report and output.
    fn switch(&mut self, index: usize, name: &str, on: bool) -> Result<(), String> {
        let id = self.command(&serde_json::json!({"switch": name, "on": on}))?;
        let reply = self.reply(&id)?;
        if reply["ok"] != Value::Bool(true) {
            return Err(format!("device refused {id}: {reply}"));
        }
        let state_topic = self.state_topic.clone();
        self.platform_message(
            STEP_TIMEOUT,
            &format!("a state report with {name}={on}"),
            |m| m.topic == state_topic && m.json().is_some_and(|v| v["switches"][name] == on),
        )?;
        let output = self.device.outputs().states.get(index).copied();
        if output != Some(on) {
            return Err(format!(
                "simulated output {name} is {output:?}, expected {on}"
            ));
        }
        self.view.note(&format!(
            "OK: {name} switched {} (reply, state report and output agree)",
            if on { "ON" } else { "off" }
        ));
        Ok(())
    }

    fn invalid_command(&mut self) -> Result<(), String> {
        let before = self.device.outputs();
        let id = self.command(&serde_json::json!({"switch": "Pump", "on": true}))?;
        let reply = self.reply(&id)?;
        if reply["ok"] != Value::Bool(false) || reply["error"] != "unknown_switch" {
            return Err(format!(
                "expected an unknown_switch error reply, got {reply}"
            ));
        }
        self.pump_for(Duration::from_millis(200));
        if self.device.outputs() != before {
            return Err("an invalid command changed an output".into());
        }
        self.view
            .note("OK: invalid command refused with error unknown_switch; nothing changed");
        Ok(())
    }

    /// Waits until the device is back (its first QoS 1 message after reconnecting was
    /// acknowledged, so its subscription is in place) and the platform resubscribed.
    fn wait_reconnected(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let (mut device_back, mut platform_back, mut device_online) = (false, false, false);
        while !(device_back && platform_back) {
            if Instant::now() > deadline {
                return Err("device or platform did not reconnect after the connection cut".into());
            }
            for event in self.drain_device() {
                match event {
                    DeviceEvent::Online { .. } => device_online = true,
                    DeviceEvent::Delivered { .. } if device_online => device_back = true,
                    _ => {}
                }
            }
            if let Some(event) = self.platform.next_event(Duration::from_millis(10)) {
                self.show_platform_event(&event);
                if matches!(event, PlatformEvent::Subscribed(_)) {
                    platform_back = true;
                }
            }
        }
        self.view.note("OK: device and platform reconnected");
        Ok(())
    }
}
