//! Alibaba Cloud IoT Platform ("Link Platform") device profile.

pub mod exchange;
pub mod register;
pub mod sign;
