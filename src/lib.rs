//! usersync: a SCIM 2.0 provisioning server that delivers users and groups from an identity
//! provider to Confluence Data Center and Linchpin User Profiles.
//!
//! Read in this order: [`scim`] (the protocol, pure), [`store`] (one transaction per change,
//! with its sync-queue row), [`http`] (the SCIM endpoints), then [`app`] (wiring).

pub mod emulator;
pub mod scim;
