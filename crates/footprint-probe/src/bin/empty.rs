//! The baseline image: the same runtime (vector table, reset handler, panic-halt, the probe's
//! volatile helpers) and no MQTT. MQTT part = flash(probe image) - flash(this).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use footprint_probe::{advance, now, sink};
use panic_halt as _;

#[entry]
fn main() -> ! {
    advance(1);
    sink(now() as u32);
    loop {
        cortex_m::asm::wfi();
    }
}
