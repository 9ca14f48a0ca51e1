//! module-gateway: the fleet's HTTP front door. (Skeleton: the proxy lands next.)

pub mod seneca;
pub mod trace;
