//! rolegate: who may do what inside the customer accounts of a hosting or cloud platform.
//!
//! [`api`] holds the four custom resources, [`engine`] the pure rule engine, and [`check`] drives
//! the engine from manifests.

pub mod api;
pub mod check;
pub mod controller;
pub mod decision;
pub mod engine;
pub mod explain;
pub mod https;
pub mod metrics;
pub mod runtime;
pub mod state;
pub mod webhook;
