//! MQTT 3.1.1 codec: strict, zero-copy decode and encode of all 14 control packets.

mod packet;

pub use packet::*;
