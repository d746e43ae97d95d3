//! `rrun app`: the app manager — images run as managed, networked, logged
//! services with no daemon. A layer above the runtime: it uses the
//! runtime's modules as a library (image unpacking, bundles, the
//! lifecycle); no runtime module imports anything from here (a test in
//! tests/app.rs checks).
//!
//! - paths:    where everything lives (app root, run directory)
//! - store:    the image store (layers unpacked once, shared, read-only)
//! - overlay:  each app's root: overlayfs over the image's layers
//! - network:  networks and ports through the CNI plugins (cni: the protocol)
//! - monitor:  the per-app host-side monitor (logs, exits), its config
//! - logs:     reading, following and rotating-aware tailing of app logs

pub mod cni;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod overlay;
#[allow(dead_code)] // until the commands use every path
pub mod paths;
pub mod store;
