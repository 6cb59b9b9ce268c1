//! Host runner infrastructure for `mqtts-core`: the rustls [`tls_transport::TlsTransport`] that
//! implements the core's `Transport` over real TCP, a throwaway PKI ([`pki`]), an in-process
//! TLS broker ([`broker`]) and a harness that runs a real Mosquitto ([`mosquitto`]); the
//! simulated device ([`sim_device`]) configured from TOML ([`host_config`]), the platform
//! side ([`platform`], on rumqttc: independent of the core) that the `mqtts-sim` binary and the
//! end-to-end tests use, and the web dashboard on it ([`dashboard`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod dashboard;
pub mod demo;
pub mod fleet;
pub mod host_config;
pub mod live;
pub mod mosquitto;
pub mod pki;
pub mod platform;
pub mod provision;
pub mod scripted_broker;
pub mod sim_device;
pub mod tls_transport;
