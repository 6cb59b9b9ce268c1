// SPDX-License-Identifier: Apache-2.0

//! Network bring-up and the wall clock, both polled from the main loop.
//!
//! [`NetMonitor`] starts DHCPv4 (or applies the static address) and reports link and address
//! changes, warning periodically while there is none. Recovery after a cable unplug/replug is
//! Zephyr's: the W5500 driver reports the carrier and the DHCPv4 client follows the interface.
//! [`ClockSync`] schedules SNTP on the worker thread: before the first TLS handshake (the
//! broker certificate's dates are checked) with back-off on failure, then periodically.

use crate::config;
use crate::ffi::{self, NetState};
use crate::transport::ZephyrTransport;

/// Watches the default network interface.
#[derive(Debug)]
pub struct NetMonitor {
    state: NetState,
    waiting_since_ms: i64,
}

impl NetMonitor {
    /// Starts DHCPv4 or the static configuration (Kconfig) and returns at once.
    pub fn start() -> Self {
        if let Err(status) = ffi::net_start() {
            log::error!("network start failed: {:?}", status);
        }
        Self {
            state: NetState::NoInterface,
            waiting_since_ms: zephyr::sys::uptime_get(),
        }
    }

    /// Updates the state, logs changes, warns every `CONFIG_MQTTS_NET_WAIT_TIMEOUT_S` while not
    /// ready. Returns whether the interface is ready (link up and an IPv4 address).
    pub fn poll(&mut self, now_ms: i64) -> bool {
        let state = ffi::net_state();
        if state != self.state {
            match state {
                NetState::Ready => log::info!("network ready (link up, IPv4 address assigned)"),
                NetState::NoAddress => log::info!("link up, waiting for an IPv4 address"),
                NetState::NoLink => log::warn!("no Ethernet link (cable unplugged?)"),
                NetState::NoInterface => log::error!("no network interface"),
            }
            if self.state == NetState::Ready || state != NetState::Ready {
                self.waiting_since_ms = now_ms;
            }
            self.state = state;
        }
        if state != NetState::Ready
            && now_ms.saturating_sub(self.waiting_since_ms) >= config::NET_WAIT_WARN_MS
        {
            let why = match state {
                NetState::NoLink => "no Ethernet link: check the cable and the W5500 wiring",
                NetState::NoAddress => "no IPv4 address: check the DHCP server or static settings",
                _ => "no network interface: check the devicetree (W5500 node)",
            };
            log::warn!(
                "network still not ready after {} s: {}",
                config::NET_WAIT_WARN_MS / 1000,
                why
            );
            self.waiting_since_ms = now_ms;
        }
        state == NetState::Ready
    }
}

/// SNTP retry back-off bounds.
const SNTP_RETRY_MIN_MS: i64 = 2_000;
const SNTP_RETRY_MAX_MS: i64 = 60_000;

/// Keeps the realtime clock set from SNTP.
#[derive(Debug)]
pub struct ClockSync {
    synced: bool,
    in_flight: bool,
    next_attempt_ms: i64,
    retry_ms: i64,
}

impl ClockSync {
    /// Nothing synchronised yet; the first attempt starts as soon as the network is ready.
    pub fn new() -> Self {
        Self {
            synced: false,
            in_flight: false,
            next_attempt_ms: 0,
            retry_ms: SNTP_RETRY_MIN_MS,
        }
    }

    /// Whether the clock has been set at least once (TLS may start).
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Starts or collects an SNTP query on the worker when due.
    pub fn poll(&mut self, now_ms: i64, net_ready: bool, transport: &mut ZephyrTransport) {
        if self.in_flight {
            match transport.poll_time_sync() {
                None => {}
                Some(Ok(unix_s)) => {
                    if !self.synced {
                        log::info!("clock set by SNTP: {} (Unix time)", unix_s);
                    }
                    self.synced = true;
                    self.in_flight = false;
                    self.retry_ms = SNTP_RETRY_MIN_MS;
                    self.next_attempt_ms = now_ms.saturating_add(config::SNTP_RESYNC_MS);
                }
                Some(Err(status)) => {
                    self.in_flight = false;
                    log::warn!(
                        "SNTP failed ({:?}), retry in {} s{}",
                        status,
                        self.retry_ms / 1000,
                        if self.synced {
                            ""
                        } else {
                            ": TLS waits for the clock"
                        }
                    );
                    self.next_attempt_ms = now_ms.saturating_add(self.retry_ms);
                    self.retry_ms = self.retry_ms.saturating_mul(2).min(SNTP_RETRY_MAX_MS);
                }
            }
            return;
        }
        if net_ready && now_ms >= self.next_attempt_ms && transport.start_time_sync() {
            self.in_flight = true;
        }
    }
}

impl Default for ClockSync {
    fn default() -> Self {
        Self::new()
    }
}
