//! The live view: one timestamped line per device event, platform action or state change.
//!
//! ```text
//! [  0.412s] device    online (session present: no)
//! [  0.413s] state     link=online  Relay1=off LED=off  reconnects=0
//! [  0.520s] platform  set Relay1 on (id demo-1)
//! [  0.531s] device    command applied: output changed
//! ```

use std::io::Write;
use std::time::Instant;

use mqtts_core::device::DeviceEvent;
use mqtts_core::selfhosted::error_str;

use crate::sim_device::{DeviceStatus, Link, Observed};

/// Writes the live view to `out` (stdout for the binary).
#[derive(Debug)]
pub struct LiveView<W: Write> {
    out: W,
    start: Instant,
    last: Option<DeviceStatus>,
    /// Show `Delivered` events (default: only when debug logging is on).
    pub show_deliveries: bool,
}

impl<W: Write> LiveView<W> {
    /// A view whose clock starts now.
    pub fn new(out: W) -> Self {
        LiveView {
            out,
            start: Instant::now(),
            last: None,
            show_deliveries: log::log_enabled!(log::Level::Debug),
        }
    }

    fn line(&mut self, who: &str, text: &str) {
        let t = self.start.elapsed().as_secs_f64();
        // A closed stdout must not stop the device; the lines are only a view.
        let _ = writeln!(self.out, "[{t:8.3}s] {who:<9} {text}");
        let _ = self.out.flush();
    }

    /// A device event.
    pub fn device(&mut self, observed: &Observed) {
        if matches!(observed.event, DeviceEvent::Delivered { .. }) && !self.show_deliveries {
            return;
        }
        let mut text = event_text(&observed.event);
        if let Some(detail) = &observed.detail {
            text.push_str(&format!(" [{detail}]"));
        }
        self.line("device", &text);
    }

    /// Prints the device state if it changed since the last call.
    pub fn status(&mut self, status: &DeviceStatus) {
        if self.last.as_ref() == Some(status) {
            return;
        }
        self.last = Some(status.clone());
        let link = match status.link {
            Link::Starting => "starting",
            Link::Backoff => "offline (waiting to retry)",
            Link::Connecting => "connecting",
            Link::Online => "online",
            Link::Stopped => "stopped",
        };
        let switches: Vec<String> = status
            .switches
            .iter()
            .map(|(n, on)| format!("{n}={}", if *on { "ON" } else { "off" }))
            .collect();
        let text = format!(
            "link={link}  {}  reconnects={}  last_failure={}",
            switches.join(" "),
            status.connections.saturating_sub(1),
            status.last_failure.unwrap_or("-"),
        );
        self.line("state", &text);
    }

    /// A platform-side action or observation.
    pub fn platform(&mut self, text: &str) {
        self.line("platform", text);
    }

    /// A note from the runner itself.
    pub fn note(&mut self, text: &str) {
        self.line("sim", text);
    }
}

/// One-line text for a device event.
pub fn event_text(event: &DeviceEvent) -> String {
    match event {
        DeviceEvent::Connecting => "connecting".into(),
        DeviceEvent::Online { session_present } => format!(
            "online (session present: {})",
            if *session_present { "yes" } else { "no" }
        ),
        DeviceEvent::Offline { cause, retry_in_ms } => format!(
            "offline: {} (retry in {:.1}s)",
            cause.as_str(),
            f64::from(*retry_in_ms) / 1000.0
        ),
        DeviceEvent::Command { changed, error } => match error {
            None if *changed => "command applied: output changed".into(),
            None => "command applied: no change".into(),
            Some(e) => format!("command refused: {}", error_str(*e)),
        },
        DeviceEvent::StateReported => "state reported".into(),
        DeviceEvent::ReportAnswered { code } => format!("platform answered report: code {code}"),
        DeviceEvent::Delivered { packet_id } => format!("delivered message #{packet_id}"),
        DeviceEvent::SubscriptionRefused { index } => {
            format!("broker refused subscription #{index}")
        }
        DeviceEvent::TimeSynced { utc_ms } => format!("time synced: {utc_ms} ms since epoch"),
        DeviceEvent::MessageSkipped { len } => {
            format!("message of {len} bytes skipped (too large)")
        }
        DeviceEvent::UnhandledMessage => "message on an unhandled topic ignored".into(),
        DeviceEvent::PublishFailed(e) => format!("publish failed: {e:?}"),
    }
}
