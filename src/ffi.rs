// SPDX-License-Identifier: Apache-2.0

//! The calls into C: the shim (`src/socket_shim.c`) and the logger set-up. Every hand-written
//! `unsafe` block of the application is here; this module imports nothing else of the crate, so
//! every other module stands above it (see `lib.rs`).
//!
//! The shim returns the small stable codes of `socket_shim.h`; they are decoded by
//! `mqtts_core::firmware::shim` (which a host test keeps in step with the header), so no errno
//! or libc value ever reaches the rest of the crate.

use log::LevelFilter;
use mqtts_core::firmware::ca::CaSet;
use mqtts_core::firmware::shim::{self, PollFlags, ShimStatus};
use mqtts_core::firmware::verify::VerifyFlags;

pub use mqtts_core::firmware::shim::NetState;

/// Raw declarations of `src/socket_shim.h`.
mod sys {
    extern "C" {
        pub fn mqtts_shim_tls_init() -> i32;
        pub fn mqtts_shim_connect(
            ca_mask: u32,
            out_fd: *mut i32,
            out_verify_flags: *mut u32,
        ) -> i32;
        pub fn mqtts_shim_send(fd: i32, buf: *const u8, len: usize) -> i32;
        pub fn mqtts_shim_recv(fd: i32, buf: *mut u8, len: usize) -> i32;
        pub fn mqtts_shim_poll(fd: i32, want_write: i32, timeout_ms: i32) -> i32;
        pub fn mqtts_shim_close(fd: i32);
        pub fn mqtts_shim_net_start() -> i32;
        pub fn mqtts_shim_net_state() -> i32;
        pub fn mqtts_shim_sntp_sync(out_unix_s: *mut i64) -> i32;
        pub fn mqtts_shim_random_u32() -> u32;
        pub fn mqtts_shim_set_broker(host: *const u8, len: usize, port: u16) -> i32;
    }
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

/// Registers the CA certificates the build embedded; returns which ones.
pub fn tls_init() -> Result<CaSet, ShimStatus> {
    // SAFETY: no arguments; the shim registers static, NUL-terminated arrays it owns and is
    // idempotent (an already registered tag is accepted).
    shim::decode(unsafe { sys::mqtts_shim_tls_init() }).map(CaSet::from_bits)
}

/// Why [`connect`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectError {
    /// The shim's status.
    pub status: ShimStatus,
    /// With [`ShimStatus::TlsVerify`]: the broker certificate's verification flags (the socket
    /// was closed before anything was sent on it); otherwise empty.
    pub verify: VerifyFlags,
}

/// Resolves, connects and (with TLS) completes the handshake trusting `cas`; with
/// `CONFIG_MQTTS_TLS_PEER_VERIFY`, a broker whose certificate fails verification is closed
/// before the socket is returned. BLOCKS for up to the socket layer's DNS, TCP and TLS
/// timeouts: call it from the worker thread only.
pub fn connect(cas: CaSet) -> Result<SocketFd, ConnectError> {
    let mut fd: i32 = -1;
    let mut flags: u32 = 0;
    // SAFETY: `fd` and `flags` are valid, writable and properly aligned for the duration of the
    // call; the shim writes each at most twice (reset, result) and keeps no pointer to them.
    let code = unsafe { sys::mqtts_shim_connect(cas.bits(), &mut fd, &mut flags) };
    let fail = |status| ConnectError {
        status,
        verify: VerifyFlags::from_bits(flags),
    };
    shim::decode(code).map_err(fail)?;
    if fd < 0 {
        return Err(fail(ShimStatus::Other));
    }
    Ok(SocketFd(fd))
}

/// Sends some of `buf` without blocking; returns how many bytes were taken.
pub fn send(fd: SocketFd, buf: &[u8]) -> Result<usize, ShimStatus> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call and the shim only
    // reads it; an invalid descriptor is rejected by Zephyr (EBADF) and reported as an error.
    let n = shim::decode(unsafe { sys::mqtts_shim_send(fd.0, buf.as_ptr(), buf.len()) })?;
    Ok(usize::try_from(n).unwrap_or(0).min(buf.len()))
}

/// Receives into `buf` (must not be empty) without blocking; returns how many bytes arrived.
pub fn recv(fd: SocketFd, buf: &mut [u8]) -> Result<usize, ShimStatus> {
    if buf.is_empty() {
        return Err(ShimStatus::Other);
    }
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call; the shim writes
    // at most that many bytes and keeps no pointer to it.
    let n = shim::decode(unsafe { sys::mqtts_shim_recv(fd.0, buf.as_mut_ptr(), buf.len()) })?;
    match usize::try_from(n) {
        Ok(n) if n <= buf.len() => Ok(n),
        _ => Err(ShimStatus::Other),
    }
}

/// Waits up to `timeout_ms` for the socket to become readable (and writable if asked).
pub fn poll(fd: SocketFd, want_write: bool, timeout_ms: i32) -> Result<PollFlags, ShimStatus> {
    // SAFETY: plain integer arguments; the shim's pollfd lives on its own stack.
    let code = unsafe { sys::mqtts_shim_poll(fd.0, i32::from(want_write), timeout_ms) };
    shim::decode(code).map(PollFlags::from_bits)
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
    shim::decode(unsafe { sys::mqtts_shim_net_start() }).map(|_| ())
}

/// Current state of the default network interface.
pub fn net_state() -> NetState {
    // SAFETY: no arguments; the shim only reads interface state.
    NetState::from_code(unsafe { sys::mqtts_shim_net_state() })
}

/// Queries the SNTP server once and sets the realtime clock; returns the Unix time. BLOCKS for
/// up to `CONFIG_MQTTS_SNTP_TIMEOUT_MS`: call it from the worker thread only.
pub fn sntp_sync() -> Result<i64, ShimStatus> {
    let mut unix_s: i64 = 0;
    // SAFETY: `unix_s` is a valid, writable i64 for the duration of the call; the shim keeps no
    // pointer to it.
    shim::decode(unsafe { sys::mqtts_shim_sntp_sync(&mut unix_s) })?;
    Ok(unix_s)
}

/// A random word for reconnect jitter.
pub fn random_u32() -> u32 {
    // SAFETY: no arguments; sys_rand32_get() may be called from any thread.
    unsafe { sys::mqtts_shim_random_u32() }
}

/// The broker host and port for later connects (the effective configuration, possibly stored).
/// Call before the first connect is submitted to the worker.
pub fn set_broker(host: &str, port: u16) -> Result<(), ShimStatus> {
    // SAFETY: `host` is valid for reads of its length; the shim copies it into its own buffer
    // before returning. No connect runs yet (the worker has no job), so nothing reads the copy
    // concurrently.
    shim::decode(unsafe { sys::mqtts_shim_set_broker(host.as_ptr(), host.len(), port) }).map(|_| ())
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

// --- Provisioning (src/provision_shim.c) -------------------------------------------------------

/// Raw declarations of `src/provision_shim.h`.
mod prov {
    extern "C" {
        pub fn mqtts_prov_settings_init() -> i32;
        pub fn mqtts_prov_load(buf: *mut u8, cap: usize, out_len: *mut usize) -> i32;
        pub fn mqtts_prov_save(key: *const u8, key_len: usize, rec: *const u8, len: usize) -> i32;
        pub fn mqtts_prov_delete(key: *const u8, key_len: usize) -> i32;
        pub fn mqtts_prov_journal_save(data: *const u8, len: usize) -> i32;
        pub fn mqtts_prov_journal_load(buf: *mut u8, cap: usize, out_len: *mut usize) -> i32;
        pub fn mqtts_prov_journal_delete() -> i32;
        pub fn mqtts_prov_factory_reset() -> i32;
        pub fn mqtts_prov_unique_id(buf: *mut u8, cap: usize) -> i32;
        pub fn mqtts_prov_mac_fixed() -> i32;
        pub fn mqtts_prov_set_mac(mac6: *const u8) -> i32;
        pub fn mqtts_prov_print(sh: *const core::ffi::c_void, text: *const u8, len: usize);
        pub fn mqtts_prov_read_secret(
            sh: *const core::ffi::c_void,
            key: *const u8,
            key_len: usize,
        ) -> i32;
        pub fn mqtts_prov_reboot();
    }
}

/// A negative errno from Zephyr (logged as a number, never decoded further).
pub type Errno = i32;

fn errno(rc: i32) -> Result<usize, Errno> {
    usize::try_from(rc).map_err(|_| rc)
}

/// The shell instance a command came from; only passed back to C.
#[derive(Debug, Clone, Copy)]
pub struct ShellRef(*const core::ffi::c_void);

impl ShellRef {
    /// Wraps the pointer the shell gave the command handler.
    pub fn from_raw(sh: *const core::ffi::c_void) -> Self {
        Self(sh)
    }
}

/// `settings_subsys_init()`.
pub fn prov_settings_init() -> Result<(), Errno> {
    // SAFETY: no arguments; called once from the application thread before any other
    // settings call.
    errno(unsafe { prov::mqtts_prov_settings_init() }).map(|_| ())
}

/// Reads every stored `mqtts/...` value into `buf`: `(length, values skipped for size)`.
pub fn prov_load(buf: &mut [u8]) -> Result<(usize, usize), Errno> {
    let mut len = 0usize;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes and `len` is a valid usize for the
    // whole call; the shim writes at most `buf.len()` bytes and keeps no pointer.
    let skipped = errno(unsafe { prov::mqtts_prov_load(buf.as_mut_ptr(), buf.len(), &mut len) })?;
    Ok((len.min(buf.len()), skipped))
}

/// `settings_save_one("mqtts/<key>", record)`.
pub fn prov_save(key: &str, record: &[u8]) -> Result<(), Errno> {
    // SAFETY: both slices are valid for reads of their lengths for the call; the shim copies
    // the key into a name buffer and settings copies the value to flash.
    errno(unsafe { prov::mqtts_prov_save(key.as_ptr(), key.len(), record.as_ptr(), record.len()) })
        .map(|_| ())
}

/// `settings_delete("mqtts/<key>")`.
pub fn prov_delete(key: &str) -> Result<(), Errno> {
    // SAFETY: `key` is valid for reads of its length; the shim only copies it.
    errno(unsafe { prov::mqtts_prov_delete(key.as_ptr(), key.len()) }).map(|_| ())
}

/// `settings_save_one("mqapply", data)`: the whole change set of one `mqtts apply`.
pub fn prov_journal_save(data: &[u8]) -> Result<(), Errno> {
    // SAFETY: `data` is valid for reads of its length for the call; settings copies it.
    errno(unsafe { prov::mqtts_prov_journal_save(data.as_ptr(), data.len()) }).map(|_| ())
}

/// Reads the apply journal into `buf`: `(length, values skipped for size)`; `(0, 0)` when
/// there is none.
pub fn prov_journal_load(buf: &mut [u8]) -> Result<(usize, usize), Errno> {
    let mut len = 0usize;
    // SAFETY: as `prov_load`.
    let skipped =
        errno(unsafe { prov::mqtts_prov_journal_load(buf.as_mut_ptr(), buf.len(), &mut len) })?;
    Ok((len.min(buf.len()), skipped))
}

/// `settings_delete("mqapply")` (no error when there is none).
pub fn prov_journal_delete() -> Result<(), Errno> {
    // SAFETY: no arguments.
    errno(unsafe { prov::mqtts_prov_journal_delete() }).map(|_| ())
}

/// Deletes the apply journal and every stored `mqtts/...` value; returns how many values.
pub fn prov_factory_reset() -> Result<usize, Errno> {
    // SAFETY: no arguments.
    errno(unsafe { prov::mqtts_prov_factory_reset() })
}

/// `hwinfo_get_device_id()` into `buf`; returns the bytes written.
pub fn prov_unique_id(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; the shim caps the count.
    errno(unsafe { prov::mqtts_prov_unique_id(buf.as_mut_ptr(), buf.len()) })
        .map(|n| n.min(buf.len()))
}

/// Whether the MAC is not ours to set: the devicetree gives `local-mac-address`, or there is
/// no W5500 (native_sim).
pub fn prov_mac_fixed() -> bool {
    // SAFETY: no arguments; a compile-time devicetree answer.
    unsafe { prov::mqtts_prov_mac_fixed() != 0 }
}

/// Sets the default interface's MAC (interface down, set, up).
pub fn prov_set_mac(mac: &[u8; 6]) -> Result<(), Errno> {
    // SAFETY: `mac` is valid for reads of 6 bytes; the shim copies them.
    errno(unsafe { prov::mqtts_prov_set_mac(mac.as_ptr()) }).map(|_| ())
}

/// Prints one line on the shell `sh`.
pub fn prov_print(sh: ShellRef, text: &[u8]) {
    // SAFETY: `sh` is the shell pointer of the running command (or the bypass callback),
    // valid while it runs; `text` is valid for reads of its length.
    unsafe { prov::mqtts_prov_print(sh.0, text.as_ptr(), text.len()) }
}

/// Reads the next line of `sh` without echo, then calls `mqtts_prov_secret_line` with `key`.
pub fn prov_read_secret(sh: ShellRef, key: &str) -> Result<(), Errno> {
    // SAFETY: as `prov_print`; the shim copies `key` into its own buffer.
    errno(unsafe { prov::mqtts_prov_read_secret(sh.0, key.as_ptr(), key.len()) }).map(|_| ())
}

/// `sys_reboot(SYS_REBOOT_COLD)`.
pub fn prov_reboot() {
    // SAFETY: no arguments; does not return.
    unsafe { prov::mqtts_prov_reboot() }
}

/// The shell's argv words (`count` NUL-terminated strings at `words`) as `&str`, into `out`;
/// returns how many fit. A word that is not UTF-8 becomes "" (the parser then refuses it).
///
/// # Safety
/// `words` is null or points to `count` valid pointers to NUL-terminated strings that stay
/// valid and unchanged while the words in `out` are used (the shell's argv during a handler).
pub unsafe fn shell_words(
    words: *const *const core::ffi::c_char,
    count: usize,
    out: &mut [&str],
) -> usize {
    let n = count.min(out.len());
    if words.is_null() {
        return 0;
    }
    for (i, slot) in out.iter_mut().enumerate().take(n) {
        // SAFETY: the shell passes `count` valid pointers to NUL-terminated strings that live
        // in its command buffer until the handler returns; the slices do not outlive the
        // handler (they are only used inside `provision::command`).
        let word = unsafe { core::ffi::CStr::from_ptr(*words.add(i)) };
        *slot = word.to_str().unwrap_or("");
    }
    n
}

/// `len` bytes at `ptr` as text, if UTF-8.
///
/// # Safety
/// `ptr` is null or valid for reads of `len` bytes that stay unchanged for `'a`.
pub unsafe fn text<'a>(ptr: *const u8, len: usize) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the shim passes its own buffers with their lengths, valid for the duration of the
    // callback in which the result is used.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    core::str::from_utf8(bytes).ok()
}
