//! Delivery targets.

pub mod confluence;
pub mod linchpin;
pub mod webhook;
