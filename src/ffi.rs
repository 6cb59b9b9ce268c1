// SPDX-License-Identifier: Apache-2.0

//! Every `unsafe` of the application: the C shim (`src/socket_shim.c`), the logger set-up, the
//! worker thread declaration and the `rust_main` entry point.
//!
//! The shim returns small stable codes (`MQTTS_SHIM_*` in `socket_shim.h`); they are decoded
//! here into [`ShimStatus`] so no errno or libc value ever reaches the rest of the crate.

use core::ffi::c_int;

use log::LevelFilter;

/// Raw declarations of `src/socket_shim.h`.
mod sys {
    extern "C" {
        pub fn mqtts_shim_tls_init() -> i32;
        pub fn mqtts_shim_connect(out_fd: *mut i32) -> i32;
        pub fn mqtts_shim_send(fd: i32, buf: *const u8, len: usize) -> i32;
        pub fn mqtts_shim_recv(fd: i32, buf: *mut u8, len: usize) -> i32;
        pub fn mqtts_shim_poll(fd: i32, want_write: i32, timeout_ms: i32) -> i32;
        pub fn mqtts_shim_close(fd: i32);
        pub fn mqtts_shim_net_start() -> i32;
        pub fn mqtts_shim_net_state() -> i32;
        pub fn mqtts_shim_sntp_sync(out_unix_s: *mut i64) -> i32;
    }
}

/// A failed shim call, decoded from the `MQTTS_SHIM_*` codes of `socket_shim.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimStatus {
    /// Nothing can be done now; try again later.
    WouldBlock,
    /// TCP connect, TLS handshake or SNTP query timed out.
    Timeout,
    /// The TCP connection was refused.
    Refused,
    /// The broker certificate was rejected.
    TlsVerify,
    /// The TLS handshake was aborted for another (or an unreported) reason.
    TlsHandshake,
    /// The broker name did not resolve.
    Dns,
    /// The peer closed the connection.
    Closed,
    /// No interface, no route or no link.
    NetDown,
    /// Out of sockets, buffers or Mbed TLS heap.
    NoMemory,
    /// The build configuration is unusable (CA certificate, static address).
    Config,
    /// Anything else; the C side logged the details.
    Other,
}

impl ShimStatus {
    /// Decodes a negative shim result. Unknown values become [`ShimStatus::Other`].
    fn from_code(code: i32) -> Self {
        match code {
            -1 => Self::WouldBlock,
            -2 => Self::Timeout,
            -3 => Self::Refused,
            -4 => Self::TlsVerify,
            -5 => Self::TlsHandshake,
            -6 => Self::Dns,
            -7 => Self::Closed,
            -8 => Self::NetDown,
            -9 => Self::NoMemory,
            -10 => Self::Config,
            _ => Self::Other,
        }
    }
}

/// Turns a shim result that carries no value into a `Result`.
fn unit_result(code: i32) -> Result<(), ShimStatus> {
    if code >= 0 {
        Ok(())
    } else {
        Err(ShimStatus::from_code(code))
    }
}

/// Turns a shim result that is a byte count when non-negative into a `Result`.
fn count_result(code: i32) -> Result<usize, ShimStatus> {
    usize::try_from(code).map_err(|_| ShimStatus::from_code(code))
}

/// An open socket descriptor returned by [`connect`]. Closing it is explicit ([`close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketFd(i32);

impl SocketFd {
    /// The raw descriptor, for passing through the worker's atomic result slot.
    pub fn raw(self) -> i32 {
        self.0
    }

    /// Rebuilds a descriptor stored with [`SocketFd::raw`].
    pub fn from_raw(raw: i32) -> Self {
        Self(raw)
    }
}

/// What [`poll`] observed on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollFlags {
    /// Data (or a TLS alert / EOF) can be read.
    pub readable: bool,
    /// Data can be written.
    pub writable: bool,
    /// The peer closed the connection.
    pub hangup: bool,
    /// The socket is in error.
    pub error: bool,
}

/// State of the default network interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetState {
    /// No interface at all (devicetree or driver problem).
    NoInterface,
    /// The interface is down or has no carrier (cable unplugged?).
    NoLink,
    /// Link up, no IPv4 address yet (DHCP in progress?).
    NoAddress,
    /// Link up and an IPv4 address assigned.
    Ready,
}

/// Registers the Kconfig-selected CA certificates with Zephyr's credential store.
pub fn tls_init() -> Result<(), ShimStatus> {
    // SAFETY: no arguments; the shim registers static, NUL-terminated arrays it owns and is
    // idempotent (an already registered tag is accepted).
    unit_result(unsafe { sys::mqtts_shim_tls_init() })
}

/// Resolves, connects and (with TLS) completes the handshake. BLOCKS for up to the socket
/// layer's DNS, TCP and TLS timeouts: call it from the worker thread only.
pub fn connect() -> Result<SocketFd, ShimStatus> {
    let mut fd: i32 = -1;
    // SAFETY: `fd` is a valid, writable i32 for the duration of the call; the shim writes it at
    // most once and keeps no pointer to it.
    let code = unsafe { sys::mqtts_shim_connect(&mut fd) };
    unit_result(code)?;
    if fd < 0 {
        return Err(ShimStatus::Other);
    }
    Ok(SocketFd(fd))
}

/// Sends some of `buf` without blocking; returns how many bytes were taken.
pub fn send(fd: SocketFd, buf: &[u8]) -> Result<usize, ShimStatus> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call and the shim only
    // reads it; an invalid descriptor is rejected by Zephyr (EBADF) and reported as an error.
    count_result(unsafe { sys::mqtts_shim_send(fd.0, buf.as_ptr(), buf.len()) })
}

/// Receives into `buf` (must not be empty) without blocking; returns how many bytes arrived.
pub fn recv(fd: SocketFd, buf: &mut [u8]) -> Result<usize, ShimStatus> {
    if buf.is_empty() {
        return Err(ShimStatus::Other);
    }
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call; the shim writes
    // at most that many bytes and keeps no pointer to it.
    let code = unsafe { sys::mqtts_shim_recv(fd.0, buf.as_mut_ptr(), buf.len()) };
    match count_result(code) {
        Ok(n) if n <= buf.len() => Ok(n),
        Ok(_) => Err(ShimStatus::Other),
        Err(e) => Err(e),
    }
}

/// Waits up to `timeout_ms` for the socket to become readable (and writable if asked).
pub fn poll(fd: SocketFd, want_write: bool, timeout_ms: i32) -> Result<PollFlags, ShimStatus> {
    // SAFETY: plain integer arguments; the shim's pollfd lives on its own stack.
    let code = unsafe { sys::mqtts_shim_poll(fd.0, i32::from(want_write), timeout_ms) };
    if code < 0 {
        return Err(ShimStatus::from_code(code));
    }
    Ok(PollFlags {
        readable: code & 0x1 != 0,
        writable: code & 0x2 != 0,
        hangup: code & 0x4 != 0,
        error: code & 0x8 != 0,
    })
}

/// Closes a socket returned by [`connect`].
pub fn close(fd: SocketFd) {
    // SAFETY: plain integer argument; closing an already closed descriptor only yields EBADF,
    // which the shim ignores.
    unsafe { sys::mqtts_shim_close(fd.0) }
}

/// Starts DHCPv4 or applies the static address (Kconfig). Returns at once.
pub fn net_start() -> Result<(), ShimStatus> {
    // SAFETY: no arguments; the shim only calls Zephyr's net_if/DHCP APIs.
    unit_result(unsafe { sys::mqtts_shim_net_start() })
}

/// Current state of the default network interface.
pub fn net_state() -> NetState {
    // SAFETY: no arguments; the shim only reads interface state.
    match unsafe { sys::mqtts_shim_net_state() } {
        3 => NetState::Ready,
        2 => NetState::NoAddress,
        1 => NetState::NoLink,
        _ => NetState::NoInterface,
    }
}

/// Queries the SNTP server once and sets the realtime clock; returns the Unix time. BLOCKS for
/// up to `CONFIG_MQTTS_SNTP_TIMEOUT_MS`: call it from the worker thread only.
pub fn sntp_sync() -> Result<i64, ShimStatus> {
    let mut unix_s: i64 = 0;
    // SAFETY: `unix_s` is a valid, writable i64 for the duration of the call; the shim keeps no
    // pointer to it.
    unit_result(unsafe { sys::mqtts_shim_sntp_sync(&mut unix_s) })?;
    Ok(unix_s)
}

/// Routes the `log` crate to Zephyr's log system (module "rust") and sets the level.
pub fn init_logging(level: LevelFilter) {
    // SAFETY: called once, first thing in `rust_main`, before any other Rust thread exists; the
    // racy variants are only unsound if another thread logs or sets the logger concurrently.
    unsafe {
        // An error means a logger is already installed, which is fine.
        let _ = zephyr::set_logger();
        log::set_max_level_racy(level);
    }
}

/// The connection worker thread (see [`crate::worker`]). The macro owns the static stack and
/// thread object; the thread is started once and never exits.
#[zephyr::thread(stack_size = crate::config::WORKER_STACK_SIZE)]
fn connection_worker() {
    crate::worker::run()
}

/// Starts the connection worker at the Kconfig priority.
pub fn spawn_worker() {
    let thread = connection_worker();
    thread.set_priority(crate::config::WORKER_PRIORITY as c_int);
    // The handle is only needed to join, and the worker never exits.
    let _running = thread.start();
}

/// Entry point called by zephyr-lang-rust's `main.c` on Zephyr's main thread.
#[no_mangle]
extern "C" fn rust_main() {
    crate::app_main()
}
