// SPDX-License-Identifier: Apache-2.0

//! Relays and the status LED, found through devicetree aliases.
//!
//! The board overlays put the outputs under a `gpio-leds` node (the compatible zephyr-lang-rust
//! turns into `GpioPin` instances, see its dt-rust.yaml) and name them with the aliases
//! `relay0` .. `relay3` and `status-led`. Aliases that a board does not define are compiled out
//! (`#[cfg(dt = ...)]`, see build.rs); the switch index is the alias number.

use mqtts_core::switch::{OutputError, SwitchOutputs};
use zephyr::device::gpio::GpioPin;
use zephyr::raw::{ZR_GPIO_OUTPUT, ZR_GPIO_OUTPUT_INIT_LOGICAL, ZR_GPIO_OUTPUT_INIT_LOW};

/// Most relays a board can declare (`relay0` .. `relay3`).
pub const MAX_RELAYS: usize = 4;

/// Which of `relay0` .. `relay3` the board's devicetree defines.
const RELAYS_DEFINED: [bool; MAX_RELAYS] = [
    cfg!(dt = "aliases::relay0"),
    cfg!(dt = "aliases::relay1"),
    cfg!(dt = "aliases::relay2"),
    cfg!(dt = "aliases::relay3"),
];

/// Number of relays (switches) the board has: the aliases `relay0`, `relay1`, ... up to the
/// first missing one.
pub const RELAY_COUNT: usize = {
    let mut n = 0;
    while n < MAX_RELAYS && RELAYS_DEFINED[n] {
        n += 1;
    }
    n
};

// A gap (relay0 and relay2 but no relay1) would silently drop relay2: refuse to build.
const _: () = {
    let mut i = RELAY_COUNT;
    while i < MAX_RELAYS {
        assert!(
            !RELAYS_DEFINED[i],
            "devicetree relay aliases must be relay0, relay1, ... without gaps"
        );
        i += 1;
    }
};

// Unused only on a board that defines none of the aliases.
#[allow(dead_code)]
/// Output configured logically off: the pin's active level from the devicetree is honoured, so
/// an active-low LED or relay input starts switched off too.
const OUTPUT_OFF: u32 = ZR_GPIO_OUTPUT | ZR_GPIO_OUTPUT_INIT_LOW | ZR_GPIO_OUTPUT_INIT_LOGICAL;

/// Why an output could not be driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpioOutputError {
    /// The board defines no output at this index, or its GPIO controller is not ready.
    Missing,
}

/// Takes a pin from the devicetree, checks its controller and configures it as "off".
#[allow(dead_code)] // unused only on a board that defines none of the aliases
fn prepare(pin: Option<GpioPin>, name: &str) -> Option<GpioPin> {
    let Some(mut pin) = pin else {
        log::warn!("{}: already taken", name);
        return None;
    };
    if !pin.is_ready() {
        log::error!("{}: GPIO controller not ready", name);
        return None;
    }
    pin.configure(OUTPUT_OFF);
    Some(pin)
}

/// The relay outputs.
pub struct GpioOutputs {
    pins: [Option<GpioPin>; MAX_RELAYS],
}

impl GpioOutputs {
    /// Collects `relay0` .. `relay3` from the devicetree, all switched off.
    pub fn from_devicetree() -> Self {
        #[allow(unused_mut)]
        let mut pins: [Option<GpioPin>; MAX_RELAYS] = [None, None, None, None];
        #[cfg(dt = "aliases::relay0")]
        {
            pins[0] = prepare(
                zephyr::devicetree::aliases::relay0::get_instance(),
                "relay0",
            );
        }
        #[cfg(dt = "aliases::relay1")]
        {
            pins[1] = prepare(
                zephyr::devicetree::aliases::relay1::get_instance(),
                "relay1",
            );
        }
        #[cfg(dt = "aliases::relay2")]
        {
            pins[2] = prepare(
                zephyr::devicetree::aliases::relay2::get_instance(),
                "relay2",
            );
        }
        #[cfg(dt = "aliases::relay3")]
        {
            pins[3] = prepare(
                zephyr::devicetree::aliases::relay3::get_instance(),
                "relay3",
            );
        }
        let outputs = Self { pins };
        log::info!("{} relay output(s) from devicetree", outputs.count());
        outputs
    }

    /// Number of usable relay outputs.
    pub fn count(&self) -> usize {
        self.pins.iter().filter(|p| p.is_some()).count()
    }

    /// Drives relay `index` on or off.
    pub fn set_output(&mut self, index: usize, on: bool) -> Result<(), GpioOutputError> {
        match self.pins.get_mut(index) {
            Some(Some(pin)) => {
                // gpio_pin_set_dt's return value is not surfaced by the zephyr crate.
                pin.set(on);
                Ok(())
            }
            _ => Err(GpioOutputError::Missing),
        }
    }
}

impl SwitchOutputs for GpioOutputs {
    fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError> {
        self.set_output(index, on)
            .map_err(|GpioOutputError::Missing| OutputError::NotReady)
    }
}

/// The status LED (`status-led` alias); absent on boards that do not define it.
pub struct StatusLed {
    pin: Option<GpioPin>,
    lit: bool,
}

impl StatusLed {
    /// Takes the `status-led` alias from the devicetree, switched off.
    pub fn from_devicetree() -> Self {
        #[cfg(dt = "aliases::status_led")]
        let pin = prepare(
            zephyr::devicetree::aliases::status_led::get_instance(),
            "status-led",
        );
        #[cfg(not(dt = "aliases::status_led"))]
        let pin: Option<GpioPin> = None;
        Self { pin, lit: false }
    }

    /// Lights the LED or turns it off; a no-op when the level is unchanged or there is no LED.
    pub fn set(&mut self, on: bool) {
        if on == self.lit {
            return;
        }
        self.lit = on;
        if let Some(pin) = self.pin.as_mut() {
            pin.set(on);
        }
    }
}
