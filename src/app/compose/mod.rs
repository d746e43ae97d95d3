//! `rrun app compose`: projects of several apps from a compose file.
//!
//! - model:       a loaded project (services as AppSpecs, networks,
//!   volumes), its errors
//! - file:        finding, reading, merging and interpolating the files
//! - yaml:        the YAML tree with lines; the emitter of `config`
//! - interpolate: ${VAR} and its forms
//! - resolve:     every key checked and turned into the apps' settings
//! - args:        the command line of `rrun app compose` and its dispatch
//! - config:      `rrun app compose config`
//! - graph:       the services' dependency graph: order, cycles, selection
//! - project:     a project's apps on disk, found by their labels
//! - wait:        waiting for an app's condition; `rrun app wait`
//! - up:          `up`: networks, services in dependency waves, gating
//! - ops:         `down`, `ps`, `logs`, `restart`

pub mod args;
pub mod config;
pub mod file;
pub mod graph;
pub mod interpolate;
pub mod model;
pub mod ops;
pub mod project;
pub mod resolve;
pub mod up;
pub mod wait;
pub mod yaml;

pub use file::load;
pub use model::*;
