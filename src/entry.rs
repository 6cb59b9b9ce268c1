// SPDX-License-Identifier: Apache-2.0

//! The entry point and the two threads: the top of the crate. Nothing imports this module; it
//! imports the loops ([`crate::main_loop`], [`crate::worker`]) and, below them, [`crate::ffi`].
//!
//! `#[no_mangle]` and the expansion of `#[zephyr::thread]` (its static stack and startup
//! trampoline) count as `unsafe_code`, hence the `allow` on this module in `lib.rs`; there is no
//! hand-written `unsafe` block here.

use core::ffi::c_int;

use crate::config;

/// The connection worker thread (see [`crate::worker`]). The macro owns the static stack and
/// thread object; the thread is started once and never exits.
#[zephyr::thread(stack_size = config::WORKER_STACK_SIZE)]
fn connection_worker() {
    crate::worker::run()
}

/// The application thread. Its stack size comes from the types it holds: see
/// [`crate::main_loop::APP_STACK_SIZE`].
#[zephyr::thread(stack_size = crate::main_loop::APP_STACK_SIZE)]
fn application() {
    crate::main_loop::run()
}

/// Entry point called by zephyr-lang-rust's `main.c` on Zephyr's main thread: sets up logging,
/// starts the two threads and returns (the main thread then ends; its stack,
/// `CONFIG_MAIN_STACK_SIZE`, only has to hold logger setup and thread creation).
#[no_mangle]
extern "C" fn rust_main() {
    crate::ffi::init_logging(config::LOG_LEVEL);
    let worker = connection_worker();
    worker.set_priority(config::WORKER_PRIORITY as c_int);
    // The handles are only needed to join, and neither thread exits.
    let _worker = worker.start();
    let app = application();
    app.set_priority(config::APP_PRIORITY as c_int);
    let _app = app.start();
}
