//! Receive ring buffer.
