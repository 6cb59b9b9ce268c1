//! Host runner infrastructure for `mqtts-core`: the rustls [`tls_transport::TlsTransport`] that
//! implements the core's `Transport` over real TCP, a throwaway PKI ([`pki`]), an in-process
//! TLS broker ([`broker`]) and a harness that runs a real Mosquitto ([`mosquitto`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod mosquitto;
pub mod pki;
pub mod scripted_broker;
pub mod tls_transport;
