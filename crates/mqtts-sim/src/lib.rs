//! Host runner infrastructure for `mqtts-core`: the rustls [`tls_transport::TlsTransport`] that
//! implements the core's `Transport` over real TCP, a throwaway PKI ([`pki`]), an in-process
//! TLS broker ([`broker`]) and a harness that runs a real Mosquitto ([`mosquitto`]); the
//! simulated device ([`sim_device`]) configured from TOML ([`host_config`]) and the platform
//! side ([`platform`]) that the `mqtts-sim` binary and the end-to-end tests use.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod demo;
pub mod host_config;
pub mod live;
pub mod mosquitto;
pub mod pki;
pub mod platform;
pub mod provision;
pub mod scripted_broker;
pub mod sim_device;
pub mod tls_transport;
