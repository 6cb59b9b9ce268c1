//! Pieces shared by the footprint images: inputs the optimizer cannot see through, and outputs it
//! cannot drop, so the measured MQTT code is the code a real device runs, not a constant-folded
//! remnant of it.
//!
//! This crate is not the core: `unsafe` is allowed here, for volatile accesses only.
#![no_std]

/// Reads `*x` with a volatile load, so the compiler must assume any value of `T` (and compile
/// every path that depends on it).
#[inline(always)]
pub fn opaque<T: Copy>(x: &T) -> T {
    // SAFETY: `x` is a valid, aligned reference to an initialised `T`; volatile only forbids the
    // compiler to assume what the load returns.
    unsafe { core::ptr::read_volatile(x) }
}

static mut SINK: u32 = 0;

/// Stores `v` where the compiler must assume something reads it.
#[inline(never)]
pub fn sink(v: u32) {
    // SAFETY: single-threaded image without interrupt handlers touching SINK; the raw pointer
    // makes no reference to the `static mut`.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!(SINK), v) }
}

static mut CLOCK_MS: u64 = 0;

/// The current time in milliseconds, opaque to the optimizer.
pub fn now() -> u64 {
    // SAFETY: as in `sink`: one thread, no reference to the `static mut` is made.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(CLOCK_MS)) }
}

/// Moves the clock on by `ms`.
pub fn advance(ms: u64) {
    let t = now().wrapping_add(ms);
    // SAFETY: as in `sink`.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!(CLOCK_MS), t) }
}

/// The session every MQTT image uses: 256-byte send buffer, 512-byte message store, 4 messages
/// in flight, 4 remembered incoming QoS 2 ids.
pub type ProbeSession = mqtts_core::session::Session<256, 512, 4, 4>;
/// The same session state without its byte buffers (send buffer and message store).
pub type ProbeSessionNoBuffers = mqtts_core::session::Session<0, 0, 4, 4>;
/// Receive ring size.
pub const RX: usize = 512;

/// The device images' harness: an in-memory socket, outputs that go to the sink, and the
/// workload driver. Only built with a profile (`aliyun` or `selfhosted` feature).
#[cfg(any(feature = "aliyun", feature = "selfhosted"))]
pub mod device {
    use super::{advance, now, opaque, sink};
    use core::cell::Cell;
    use mqtts_core::device::{Device, DeviceBuffers, DeviceEvent};
    use mqtts_core::switch::{OutputError, SwitchOutputs};
    use mqtts_core::transport::{ConnectProgress, Transport, TransportError};

    /// Switches of both device images (the firmware's Kconfig default).
    pub const SWITCHES: usize = 2;
    /// Switch names.
    pub static SWITCH_NAMES: [&str; SWITCHES] = ["Relay1", "LED"];
    /// The "random" jitter input.
    pub static RANDOM: u32 = 0x9e37_79b9;
    /// CONNACK (accepted, no session).
    pub static RX_CONNECTED: &[u8] = b"\x20\x02\x00\x00";

    /// The device as the firmware builds it (Kconfig defaults: RX 2048, TX 1024, store 2048,
    /// 4 in flight).
    pub type ProbeDevice = Device<'static, MemTransport, Outputs, SWITCHES, 2048, 1024, 2048, 4>;
    /// The buffers the probe device borrows (a `static`, as in the firmware).
    pub type ProbeBuffers = DeviceBuffers<2048, 1024, 2048, 4>;

    /// An in-memory socket: connects at once, sends into the sink, receives the bytes `deliver`
    /// made available. (`Device` hands out only `&T`, hence the `Cell`.)
    pub struct MemTransport {
        input: Cell<&'static [u8]>,
    }

    impl MemTransport {
        /// A connected socket with nothing to read.
        pub const fn new() -> Self {
            MemTransport {
                input: Cell::new(&[]),
            }
        }

        fn deliver(&self, bytes: &'static [u8]) {
            self.input.set(bytes);
        }
    }

    impl Default for MemTransport {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Transport for MemTransport {
        fn start_connect(&mut self) -> Result<(), TransportError> {
            Ok(())
        }
        fn poll_connect(&mut self) -> Result<ConnectProgress, TransportError> {
            Ok(ConnectProgress::Established)
        }
        fn send(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
            sink(
                buf.iter()
                    .fold(0u32, |a, &b| a.rotate_left(5) ^ u32::from(b)),
            );
            Ok(buf.len())
        }
        fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
            let input = self.input.get();
            let n = buf.len().min(input.len());
            if n == 0 {
                return Err(TransportError::WouldBlock);
            }
            let (now, later) = input.split_at(n);
            if let Some(dst) = buf.get_mut(..n) {
                dst.copy_from_slice(now);
            }
            self.input.set(later);
            Ok(n)
        }
        fn close(&mut self) {
            sink(0xc105e);
        }
    }

    /// The relays and LEDs: each change goes to the sink (a GPIO write on the board).
    pub struct Outputs;

    impl SwitchOutputs for Outputs {
        fn set(&mut self, index: usize, on: bool) -> Result<(), OutputError> {
            sink((index as u32) << 1 | u32::from(on));
            Ok(())
        }
    }

    /// Polls the device until it has nothing more to report.
    fn run(device: &mut ProbeDevice) {
        while let Some(event) = device.poll(now(), opaque(&RANDOM)) {
            sink(match event {
                DeviceEvent::Offline { cause, retry_in_ms } => {
                    cause.as_str().len() as u32 ^ retry_in_ms
                }
                DeviceEvent::Command { changed, error } => {
                    u32::from(changed) | u32::from(error.is_some()) << 1
                }
                DeviceEvent::ReportAnswered { code } => code,
                DeviceEvent::Delivered { packet_id } => u32::from(packet_id),
                DeviceEvent::TimeSynced { utc_ms } => utc_ms as u32,
                _ => 0x5a,
            });
        }
    }

    /// The workload: connect, the CONNACK (the device subscribes and reports), then each of
    /// `scripts` 20 ms apart (what the broker sends), then 61 s later PINGREQ and the periodic
    /// report.
    pub fn drive(device: &mut ProbeDevice, scripts: &[&'static [u8]]) {
        run(device);
        advance(20);
        device.driver().transport().deliver(opaque(&RX_CONNECTED));
        run(device);
        for script in scripts {
            advance(20);
            device.driver().transport().deliver(opaque(script));
            run(device);
        }
        advance(61_000);
        run(device);
    }

    /// Stops the image with `code` in the sink.
    pub fn halt(code: u32) -> ! {
        sink(code);
        loop {
            cortex_m::asm::wfi();
        }
    }
}
