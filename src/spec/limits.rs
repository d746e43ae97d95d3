//! Size limits on what rrun parses from the caller: config.json, and the
//! process JSON of `exec --process`. Without them a 27 MB config (two
//! million env entries) cost 440 MB of memory before any check ran. The
//! file cap bounds the memory of parsing (checked before reading, and
//! again while reading, for a file that grows or is not a regular file);
//! the array caps give a clear error naming the field, and bound the work
//! each entry costs later (a mount, a seccomp rule, a hook process).
//!
//! Every limit is far above what real configs use, so none of them is a
//! policy: they only stop input that no container could honour anyway.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use oci_spec::runtime::{Hook, Process, Spec};

use super::SpecError;

/// config.json and `--process`: 8 MiB. The largest honest part of a config
/// is the program's args and env, which the kernel's execve bounds at 6 MiB
/// (3/4 of the 8 MiB stack limit it allows for them); Kubernetes caps all
/// annotations at 256 KiB, and the largest seccomp profiles in use (Docker's,
/// podman's) are under 100 KiB. Parsing 8 MiB of tiny env strings costs
/// about 150 MB at worst.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// args or env entries of one process or hook. execve cannot take more
/// than its 6 MiB bound allows (at least 9 bytes an entry with its NUL and
/// pointer); the largest env seen in practice, Kubernetes' service links
/// (seven variables per service in the namespace), stays far below this.
const MAX_ARGV: usize = 1 << 17;
/// Mounts, devices, masked or read-only paths, sysctls, seccomp rules and
/// the names in one rule, device cgroup rules: a pod with hundreds of
/// volumes, or Docker's seccomp profile (about 400 syscall names), is a
/// small fraction of this.
const MAX_LIST: usize = 4096;
/// Hooks of one kind: engines add a handful.
const MAX_HOOKS: usize = 1024;
/// Options of one mount: the kernel knows a few dozen.
const MAX_OPTIONS: usize = 256;
/// Conditions of one seccomp rule: a syscall has 6 arguments; libseccomp
/// takes a few conditions on each.
const MAX_SECCOMP_ARGS: usize = 64;
/// uid/gid mappings: the kernel refuses more than 340 lines.
const MAX_ID_MAPPINGS: usize = 340;
/// Supplementary groups: NGROUPS_MAX.
const MAX_GROUPS: usize = 65536;
/// Annotations: Kubernetes caps their total size at 256 KiB.
const MAX_ANNOTATIONS: usize = 65536;
/// rlimits (the kernel has 16), namespaces (8 kinds), seccomp
/// architectures and flags, hugepage sizes.
const MAX_SMALL: usize = 64;

/// Reads `path` if it is at most `MAX_FILE_BYTES`; `what` names it in the
/// error ("config.json", "--process").
pub fn read_capped(path: &Path, what: &str) -> Result<Vec<u8>, SpecError> {
    let io = |e| SpecError::Read {
        path: path.to_path_buf(),
        source: e,
    };
    let too_big = || {
        SpecError::Limit(format!(
            "{what} {}: larger than the {} MiB rrun accepts",
            path.display(),
            MAX_FILE_BYTES >> 20
        ))
    };
    let f = File::open(path).map_err(io)?;
    if f.metadata().map_err(io)?.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut data = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(data)
}

fn cap(field: &str, len: usize, max: usize) -> Result<(), SpecError> {
    if len > max {
        return Err(SpecError::Limit(format!(
            "{field}: {len} entries, more than the {max} rrun accepts"
        )));
    }
    Ok(())
}

fn len<T>(v: &Option<Vec<T>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// The array caps of a process; `prefix` starts each field's name in the
/// error ("config.json: process." or "--process FILE: ").
pub fn check_process(p: &Process, prefix: &str) -> Result<(), SpecError> {
    cap(&format!("{prefix}args"), len(p.args()), MAX_ARGV)?;
    cap(&format!("{prefix}env"), len(p.env()), MAX_ARGV)?;
    cap(&format!("{prefix}rlimits"), len(p.rlimits()), MAX_SMALL)?;
    cap(
        &format!("{prefix}user.additionalGids"),
        len(p.user().additional_gids()),
        MAX_GROUPS,
    )?;
    Ok(())
}

/// A cap on a field of config.json.
fn field(name: &str, len: usize, max: usize) -> Result<(), SpecError> {
    cap(&format!("config.json: {name}"), len, max)
}

fn check_hooks(kind: &str, hooks: &Option<Vec<Hook>>) -> Result<(), SpecError> {
    field(&format!("hooks.{kind}"), len(hooks), MAX_HOOKS)?;
    for (i, h) in hooks.as_deref().unwrap_or_default().iter().enumerate() {
        field(&format!("hooks.{kind}[{i}].args"), len(h.args()), MAX_ARGV)?;
        field(&format!("hooks.{kind}[{i}].env"), len(h.env()), MAX_ARGV)?;
    }
    Ok(())
}

/// The array caps of a whole config.
pub fn check_spec(spec: &Spec) -> Result<(), SpecError> {
    if let Some(p) = spec.process() {
        check_process(p, "config.json: process.")?;
    }
    field("mounts", len(spec.mounts()), MAX_LIST)?;
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        field(
            &format!("mounts[{i}].options"),
            len(m.options()),
            MAX_OPTIONS,
        )?;
        field(
            &format!("mounts[{i}].uidMappings"),
            len(m.uid_mappings()),
            MAX_ID_MAPPINGS,
        )?;
        field(
            &format!("mounts[{i}].gidMappings"),
            len(m.gid_mappings()),
            MAX_ID_MAPPINGS,
        )?;
    }
    if let Some(h) = spec.hooks() {
        check_hooks("prestart", h.prestart())?;
        check_hooks("createRuntime", h.create_runtime())?;
        check_hooks("createContainer", h.create_container())?;
        check_hooks("startContainer", h.start_container())?;
        check_hooks("poststart", h.poststart())?;
        check_hooks("poststop", h.poststop())?;
    }
    field(
        "annotations",
        spec.annotations().as_ref().map_or(0, |a| a.len()),
        MAX_ANNOTATIONS,
    )?;
    let Some(l) = spec.linux() else {
        return Ok(());
    };
    field("linux.uidMappings", len(l.uid_mappings()), MAX_ID_MAPPINGS)?;
    field("linux.gidMappings", len(l.gid_mappings()), MAX_ID_MAPPINGS)?;
    field("linux.namespaces", len(l.namespaces()), MAX_SMALL)?;
    field("linux.devices", len(l.devices()), MAX_LIST)?;
    field("linux.maskedPaths", len(l.masked_paths()), MAX_LIST)?;
    field("linux.readonlyPaths", len(l.readonly_paths()), MAX_LIST)?;
    field(
        "linux.sysctl",
        l.sysctl().as_ref().map_or(0, |s| s.len()),
        MAX_LIST,
    )?;
    field(
        "linux.timeOffsets",
        l.time_offsets().as_ref().map_or(0, |t| t.len()),
        MAX_SMALL,
    )?;
    if let Some(r) = l.resources() {
        field("linux.resources.devices", len(r.devices()), MAX_LIST)?;
        field(
            "linux.resources.hugepageLimits",
            len(r.hugepage_limits()),
            MAX_SMALL,
        )?;
        if let Some(b) = r.block_io() {
            field(
                "linux.resources.blockIO.weightDevice",
                len(b.weight_device()),
                MAX_LIST,
            )?;
            for (name, v) in [
                ("throttleReadBpsDevice", b.throttle_read_bps_device()),
                ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
                ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
                ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
            ] {
                field(&format!("linux.resources.blockIO.{name}"), len(v), MAX_LIST)?;
            }
        }
        if let Some(n) = r.network() {
            field(
                "linux.resources.network.priorities",
                len(n.priorities()),
                MAX_LIST,
            )?;
        }
        field(
            "linux.resources.rdma",
            r.rdma().as_ref().map_or(0, |m| m.len()),
            MAX_LIST,
        )?;
        field(
            "linux.resources.unified",
            r.unified().as_ref().map_or(0, |m| m.len()),
            MAX_LIST,
        )?;
    }
    if let Some(s) = l.seccomp() {
        field(
            "linux.seccomp.architectures",
            len(s.architectures()),
            MAX_SMALL,
        )?;
        field("linux.seccomp.flags", len(s.flags()), MAX_SMALL)?;
        field("linux.seccomp.syscalls", len(s.syscalls()), MAX_LIST)?;
        for (i, r) in s
            .syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            field(
                &format!("linux.seccomp.syscalls[{i}].names"),
                r.names().len(),
                MAX_LIST,
            )?;
            field(
                &format!("linux.seccomp.syscalls[{i}].args"),
                len(r.args()),
                MAX_SECCOMP_ARGS,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn arrays_over_the_caps_name_the_field() {
        let mut v = crate::spec::default_spec(false);
        check_spec(&spec(v.clone())).unwrap();
        v["process"]["env"] = serde_json::json!(vec!["A=1"; MAX_ARGV + 1]);
        let e = check_spec(&spec(v.clone())).unwrap_err().to_string();
        assert!(e.contains("process.env") && e.contains("131073"), "{e}");
        v["process"]["env"] = serde_json::json!(vec!["A=1"; MAX_ARGV]);
        check_spec(&spec(v.clone())).unwrap();
        let m = v["mounts"][0].clone();
        v["mounts"] = serde_json::json!(vec![m; MAX_LIST + 1]);
        let e = check_spec(&spec(v)).unwrap_err().to_string();
        assert!(e.starts_with("config.json: mounts:"), "{e}");
    }

    #[test]
    fn file_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("config.json");
        std::fs::write(&p, b"{}").unwrap();
        assert_eq!(read_capped(&p, "config.json").unwrap(), b"{}");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = read_capped(&p, "config.json").unwrap_err().to_string();
        assert!(e.contains("8 MiB"), "{e}");
    }
}
