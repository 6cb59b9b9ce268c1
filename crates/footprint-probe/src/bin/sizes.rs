//! Not measured: carries `size_of` of the session types as built for this target, for
//! `report.sh` to read out of the ELF (`FOOTPRINT_SIZES`).
#![no_std]
#![no_main]

use core::mem::size_of;
use cortex_m_rt::entry;
use footprint_probe::{opaque, sink, ProbeSession, ProbeSessionNoBuffers, RX};
use mqtts_core::ring::RingBuffer;
use panic_halt as _;

/// Session with buffers, session without buffers, receive ring.
#[no_mangle]
static FOOTPRINT_SIZES: [u32; 3] = [
    size_of::<ProbeSession>() as u32,
    size_of::<ProbeSessionNoBuffers>() as u32,
    size_of::<RingBuffer<RX>>() as u32,
];

#[entry]
fn main() -> ! {
    // Referencing every element keeps the array through the linker's garbage collection.
    for size in &FOOTPRINT_SIZES {
        sink(opaque(size));
    }
    loop {
        cortex_m::asm::wfi();
    }
}
