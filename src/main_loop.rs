// SPDX-License-Identifier: Apache-2.0

//! The main loop: never blocks for longer than one short tick, so switches, the status LED
//! (and later a watchdog) are served while the worker thread runs a TLS handshake.
//!
//! Each tick:
//! 1. network: link/address state ([`NetMonitor`]),
//! 2. clock: SNTP before the first TLS handshake and periodically ([`ClockSync`]),
//! 3. MQTT session: the core's connection driver over [`ZephyrTransport`] (the seam in
//!    [`App::step_session`]),
//! 4. status LED pattern,
//! 5. sleep until the socket is readable or the tick ends.
//!
//! The MQTT session and connection driver of `mqtts-core` are not available yet; the seam is
//! [`App::step_session`] and the calls it must make are listed there. Everything else in this
//! file is final.

use mqtts_core::transport::Transport;
use zephyr::time::{sleep, Duration};

use crate::net::{ClockSync, NetMonitor};
use crate::outputs::{GpioOutputs, StatusLed};
use crate::transport::ZephyrTransport;

/// Length of one loop tick in milliseconds: the worst-case latency of switches and LED.
const TICK_MS: i32 = 20;

/// What the status LED shows, from the most to the least serious problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// No link or no address: fast blink (5 Hz).
    NoNetwork,
    /// Network up, waiting for SNTP: double blink.
    NoClock,
    /// Connecting or reconnecting to the broker: slow blink (1 Hz).
    Connecting,
    /// MQTT session up: steady on.
    Online,
}

impl DeviceState {
    /// LED level at `now_ms` for this state.
    fn led_on(self, now_ms: i64) -> bool {
        let t = now_ms.rem_euclid(1000);
        match self {
            DeviceState::NoNetwork => t % 200 < 100,
            DeviceState::NoClock => t < 100 || (200..300).contains(&t),
            DeviceState::Connecting => t < 500,
            DeviceState::Online => true,
        }
    }
}

/// Everything the loop owns.
pub struct App {
    net: NetMonitor,
    clock: ClockSync,
    outputs: GpioOutputs,
    status_led: StatusLed,
    transport: ZephyrTransport,
    session_notice_logged: bool,
}

impl App {
    /// Assembles the application from its parts.
    pub fn new(
        net: NetMonitor,
        outputs: GpioOutputs,
        status_led: StatusLed,
        transport: ZephyrTransport,
    ) -> Self {
        Self {
            net,
            clock: ClockSync::new(),
            outputs,
            status_led,
            transport,
            session_notice_logged: false,
        }
    }

    /// One iteration of the loop at time `now_ms` (milliseconds since boot).
    fn tick(&mut self, now_ms: i64) {
        let net_ready = self.net.poll(now_ms);
        if !net_ready && self.transport.is_open() {
            // A socket cannot outlive the link for long anyway; closing now makes the core
            // reconnect (with back-off) as soon as the link and address are back.
            log::warn!("network lost, closing the broker connection");
            self.transport.close();
        }
        self.clock.poll(now_ms, net_ready, &mut self.transport);

        // TLS checks certificate dates: no handshake before the clock is set.
        let may_connect = net_ready && (self.clock.is_synced() || !crate::config::TLS);
        let online = self.step_session(now_ms, may_connect);

        let state = if !net_ready {
            DeviceState::NoNetwork
        } else if !self.clock.is_synced() && crate::config::TLS {
            DeviceState::NoClock
        } else if online {
            DeviceState::Online
        } else {
            DeviceState::Connecting
        };
        self.status_led.set(state.led_on(now_ms));
    }

    /// The MQTT seam: drives the core's connection driver and session for one tick and returns
    /// whether the session is up.
    ///
    /// To be wired once `mqtts-core` exposes its driver. Per tick it must:
    /// - give the driver `now_ms`, `may_connect` and `&mut self.transport` (a
    ///   `mqtts_core::transport::Transport`); the driver calls `start_connect`/`poll_connect`
    ///   (never blocking: the handshake runs on the worker), then `recv` into its ring buffer
    ///   and `send` from its TX buffer (`config::RX_BUFFER_SIZE`, `config::TX_BUFFER_SIZE`);
    /// - pass the session configuration from [`crate::config`] (profile identity, keep-alive,
    ///   ping and connect timeouts, in-flight limit, back-off bounds, clean session, telemetry
    ///   period) and, for Alibaba, the Unix time for the signed client id (SNTP result);
    /// - apply switch commands from the session to `&mut self.outputs` (a
    ///   `mqtts_core::switch::SwitchOutputs`) and publish the resulting state;
    /// - report "session up" for the status LED.
    fn step_session(&mut self, _now_ms: i64, may_connect: bool) -> bool {
        if may_connect && !self.session_notice_logged {
            log::warn!(
                "network and clock ready; MQTT session driver not wired yet ({} relay output(s) idle)",
                self.outputs.count()
            );
            self.session_notice_logged = true;
        }
        false
    }

    /// Sleeps until the end of the tick, waking early when the broker socket has data.
    fn wait(&mut self) {
        if self.transport.is_open() {
            if let Err(e) = self.transport.wait(false, TICK_MS) {
                log::warn!("socket poll failed: {:?}", e);
                self.transport.close();
            }
        } else {
            sleep(Duration::millis_at_least(TICK_MS as _));
        }
    }
}

/// Runs the application forever.
pub fn run(mut app: App) -> ! {
    loop {
        app.tick(zephyr::sys::uptime_get());
        app.wait();
    }
}
