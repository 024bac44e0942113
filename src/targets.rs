//! Delivery targets.

pub mod confluence;
