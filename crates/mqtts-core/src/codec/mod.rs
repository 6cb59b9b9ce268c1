//! MQTT 3.1.1 codec: strict, zero-copy decode and encode of all 14 control packets.

mod decode;
mod encode;
mod error;
mod packet;
pub mod topic;

#[cfg(test)]
mod tests;

pub use decode::{decode, decode_body, decode_fixed_header, decode_server_packet, FixedHeader};
pub(crate) use encode::encode_client;
pub use encode::{encode, encoded_len, PUBLISH_DUP_FLAG};
pub use error::{DecodeError, EncodeError};
pub use packet::*;
