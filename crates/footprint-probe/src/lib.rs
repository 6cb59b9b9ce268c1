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
