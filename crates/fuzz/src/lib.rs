//! Fuzz harnesses for `mqtts-core`.
//!
//! Each module holds the whole logic of one libFuzzer target as a plain `run(&[u8])` function, so
//! the files in `fuzz_targets/` are one line each, and the seed corpora and their tests can drive
//! the same code on stable Rust. Adding a target: a module here with `run`, a one-line file in
//! `fuzz_targets/`, a `[[bin]]` entry in `Cargo.toml` (`cargo fuzz add <name>` writes the last
//! two), and its seeds in `seeds.rs`.

pub mod alink;
pub mod decode;
pub mod host_config;
pub mod input;
pub mod ring;
pub mod seeds;
pub mod selfhosted;
pub mod session;
pub mod shell;
pub mod sign;
pub mod store;
