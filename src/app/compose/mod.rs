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

pub mod args;
pub mod config;
pub mod file;
pub mod interpolate;
pub mod model;
pub mod resolve;
pub mod yaml;

pub use file::load;
pub use model::*;
