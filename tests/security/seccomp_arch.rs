//! Security regressions: see the module list in tests/security.rs.

#[allow(unused_imports)]
use crate::common::*;
