//! Not measured: carries `size_of` of the session types as built for this target, for
//! `report.sh` to read out of the ELF (`FOOTPRINT_SIZES`).
#![no_std]
#![no_main]

use core::mem::size_of;
use cortex_m_rt::entry;
use footprint_probe::{opaque, sink, ProbeSession, ProbeSessionNoBuffers, RX};
use mqtts_core::device::{Device, DeviceBuffers};
use mqtts_core::ring::RingBuffer;
use mqtts_core::switch::{OutputError, SwitchOutputs};
use mqtts_core::transport::{ConnectProgress, Transport, TransportError};
use panic_halt as _;

/// Stand-in for the firmware's `ZephyrTransport<'_>` in `size_of` (a reference to the state
/// shared with the connection worker plus small fields). The real transport and GPIO types live
/// in the Zephyr crate, which this probe cannot build: the `Device` row is exact up to their
/// difference from these stand-ins (a few dozen bytes); the buffers row is exact.
struct FirmwareLikeTransport<'a> {
    _shared: &'a u32,
    _fd: i32,
    _last_error: i32,
}

impl Transport for FirmwareLikeTransport<'_> {
    fn start_connect(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
        Ok(ConnectProgress::Pending)
    }
    fn send(&mut self, _: &[u8]) -> Result<usize, TransportError> {
        Err(TransportError::WouldBlock)
    }
    fn recv(&mut self, _: &mut [u8]) -> Result<usize, TransportError> {
        Err(TransportError::WouldBlock)
    }
    fn close(&mut self) {}
}

/// Stand-in for the firmware's GPIO outputs (device handles and pin numbers).
struct FirmwareLikeOutputs {
    _pins: [(&'static u32, u8); 2],
}

impl SwitchOutputs for FirmwareLikeOutputs {
    fn set(&mut self, _: usize, _: bool) -> Result<(), OutputError> {
        Ok(())
    }
}

/// The firmware's buffers at the Kconfig defaults (RX 2048, TX 1024, store 2048, 4 in flight);
/// the same type for both profiles.
type FirmwareBuffers = DeviceBuffers<2048, 1024, 2048, 4>;
/// The firmware's `Device` (2 switches), which borrows [`FirmwareBuffers`].
type FirmwareDevice =
    Device<'static, FirmwareLikeTransport<'static>, FirmwareLikeOutputs, 2, 2048, 1024, 2048, 4>;

/// Session with buffers, session without buffers, receive ring; then the firmware's
/// `DeviceBuffers` and `Device` (both profiles use the same types). `report.sh` reads the first
/// three; the last two are for the device rows.
#[no_mangle]
static FOOTPRINT_SIZES: [u32; 5] = [
    size_of::<ProbeSession>() as u32,
    size_of::<ProbeSessionNoBuffers>() as u32,
    size_of::<RingBuffer<RX>>() as u32,
    size_of::<FirmwareBuffers>() as u32,
    size_of::<FirmwareDevice>() as u32,
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
