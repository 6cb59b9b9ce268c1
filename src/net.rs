// SPDX-License-Identifier: Apache-2.0

//! Network bring-up, polled from the main loop.
//!
//! [`NetMonitor`] starts DHCPv4 (or applies the static address) and reports link and address
//! changes, warning periodically while there is none. Recovery after a cable unplug/replug is
//! Zephyr's: the W5500 driver reports the carrier and the DHCPv4 client follows the interface.
//! (The SNTP schedule is `mqtts_core::firmware::clock`, driven by `main_loop`.)

use crate::config;
use crate::ffi::{self, NetState};
use crate::uptime::uptime_ms;

/// Watches the default network interface.
#[derive(Debug)]
pub struct NetMonitor {
    state: NetState,
    waiting_since_ms: u64,
}

impl NetMonitor {
    /// Starts DHCPv4 or the static configuration (Kconfig) and returns at once.
    pub fn start() -> Self {
        if let Err(status) = ffi::net_start() {
            log::error!("network start failed: {:?}", status);
        }
        Self {
            state: NetState::NoInterface,
            waiting_since_ms: uptime_ms(),
        }
    }

    /// The next time [`NetMonitor::poll`] would warn, while the network is not ready.
    pub fn next_warning(&self) -> Option<u64> {
        (self.state != NetState::Ready).then(|| {
            self.waiting_since_ms
                .saturating_add(config::NET_WAIT_WARN_MS)
        })
    }

    /// Updates the state, logs changes, warns every `CONFIG_MQTTS_NET_WAIT_TIMEOUT_S` while not
    /// ready. Returns whether the interface is ready (link up and an IPv4 address).
    pub fn poll(&mut self, now_ms: u64) -> bool {
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
