//! Process security: the five capability sets (caps crate) applied across
//! the uid change, no_new_privs, seccomp (seccomp.rs) and the LSM labels
//! (lsm.rs: AppArmor profile, SELinux process and mount labels).

pub mod lsm;
pub mod seccomp;

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("capabilities: {set}: {msg}")]
    Caps { set: &'static str, msg: String },
}

/// The sets to apply, resolved to the caps crate's names. Capabilities this
/// kernel does not know are dropped with a warning, as runc does.
#[derive(Debug, Default, Clone)]
pub struct CapPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub permitted: CapsHashSet,
    pub ambient: CapsHashSet,
}

impl CapPlan {
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> CapPlan {
        let mut plan = CapPlan::default();
        let Some(c) = c else { return plan };
        let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
        let conv = |set: Option<&HashSet<oci_spec::runtime::Capability>>| -> CapsHashSet {
            let mut out = CapsHashSet::new();
            for cap in set.into_iter().flatten() {
                let name = cap.to_string();
                let name = if name.starts_with("CAP_") {
                    name
                } else {
                    format!("CAP_{name}")
                };
                match Capability::from_str(&name) {
                    Ok(c) if known.contains(&c) => {
                        out.insert(c);
                    }
                    _ => plan_unknown(&name),
                }
            }
            out
        };
        fn plan_unknown(name: &str) {
            crate::log::warn(&format!(
                "capability {name} is not known to this kernel; ignored"
            ));
        }
        plan.bounding = conv(c.bounding().as_ref());
        plan.effective = conv(c.effective().as_ref());
        plan.inheritable = conv(c.inheritable().as_ref());
        plan.permitted = conv(c.permitted().as_ref());
        plan.ambient = conv(c.ambient().as_ref());
        plan
    }

    /// Step 1, while still privileged: shrink the bounding set (needs
    /// CAP_SETPCAP, which the uid change may take away).
    pub fn drop_bounding(&self) -> Result<(), SecurityError> {
        let current = caps::read(None, CapSet::Bounding).map_err(|e| SecurityError::Caps {
            set: "bounding",
            msg: e.to_string(),
        })?;
        for cap in current.difference(&self.bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|e| SecurityError::Caps {
                set: "bounding",
                msg: format!("dropping {cap}: {e}"),
            })?;
        }
        Ok(())
    }

    /// Step 2, after setresuid (with PR_SET_KEEPCAPS): the other four sets.
    /// Inheritable goes first, while permitted is still full enough to allow
    /// it, then effective, then permitted; ambient last, since it needs both permitted and inheritable. The
    /// inheritable set is exactly the config's, never more (CVE-2022-29162).
    pub fn apply(&self) -> Result<(), SecurityError> {
        let set = |which: CapSet, name: &'static str, value: &CapsHashSet| {
            caps::set(None, which, value).map_err(|e| SecurityError::Caps {
                set: name,
                msg: e.to_string(),
            })
        };
        set(CapSet::Inheritable, "inheritable", &self.inheritable)?;
        // The kernel requires effective ⊆ permitted at every capset: shrink
        // effective before permitted.
        set(CapSet::Effective, "effective", &self.effective)?;
        set(CapSet::Permitted, "permitted", &self.permitted)?;
        caps::clear(None, CapSet::Ambient).map_err(|e| SecurityError::Caps {
            set: "ambient",
            msg: e.to_string(),
        })?;
        // The kernel keeps a capability ambient only while it is permitted
        // and inheritable. runc's default spec lists ambient capabilities
        // without inheritable ones, and runc skips those silently: so do we.
        for cap in self.ambient.intersection(&self.inheritable) {
            if !self.permitted.contains(cap) {
                continue;
            }
            caps::raise(None, CapSet::Ambient, *cap).map_err(|e| SecurityError::Caps {
                set: "ambient",
                msg: format!("raising {cap}: {e}"),
            })?;
        }
        Ok(())
    }
}
