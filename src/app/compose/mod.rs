//! `rrun app compose`: compose files (the Compose Specification's
//! single-host subset) run as apps. One module per concern:
//!
//! - graph:   the services' dependency graph: order, cycles, selection
//! - project: a project's apps on disk, found by their labels
//! - wait:    waiting for an app's condition; `rrun app wait`
//! - up:      `up`: networks, services in dependency waves, gating
//! - ops:     `down`, `ps`, `logs`, `restart`

pub mod args;
pub mod config;
pub mod graph;
pub mod ops;
pub mod project;
pub mod stub;
pub mod up;
pub mod wait;

pub use stub::*;
