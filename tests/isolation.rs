//! What the container process sees of its isolation: namespaces, identity,
//! capabilities, limits, masked and read-only paths, sysctls...

#[macro_use]
mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

/// Run `script` in a container built from `b`; assert exit 0, return stdout.
fn run_sh(b: Bundle, script: &str) -> String {
    let c = Container::new(b.sh(script));
    let out = c.run_ok();
    c.assert_clean();
    out
}

/// Value of a "Key:\tvalue" line in /proc/self/status output.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} missing in:\n{status}"))
        .trim()
}

fn hex(mask: u64) -> String {
    format!("{mask:016x}")
}

#[test]
fn hostname_from_config() {
    let out = run_sh(
        Bundle::new().hostname("rrun-iso-host"),
        "hostname; cat /proc/sys/kernel/hostname",
    );
    assert_eq!(out, "rrun-iso-host\nrrun-iso-host\n");
}

#[test]
fn namespaces_differ_from_host() {
    let c = Container::new(Bundle::new().sh("exec sleep 30")).created();
    let pid = c.pid().to_string();
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        assert_ne!(ns_of(&pid, ns), ns_of("self", ns), "{ns} namespace shared");
    }
    // Namespaces not requested are shared with the host.
    assert_eq!(ns_of(&pid, "user"), ns_of("self", "user"));
    assert_eq!(ns_of(&pid, "cgroup"), ns_of("self", "cgroup"));
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn without_uts_namespace_shares_host_uts() {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let b = Bundle::new().without_namespace("uts").with(|c| {
        c.as_object_mut().unwrap().remove("hostname");
    });
    let out = run_sh(b, "cat /proc/sys/kernel/hostname");
    assert_eq!(out, host);
}

#[test]
fn default_capabilities_as_root() {
    let out = run_sh(Bundle::new(), "grep ^Cap /proc/self/status");
    let m = hex(cap_mask(DEFAULT_CAPS));
    assert_eq!(status_field(&out, "CapBnd"), m);
    // uid 0 exec: permitted = effective = bounding (inheritable empty).
    assert_eq!(status_field(&out, "CapPrm"), m);
    assert_eq!(status_field(&out, "CapEff"), m);
    assert_eq!(status_field(&out, "CapInh"), hex(0));
    // Ambient needs the cap in inheritable too: none are.
    assert_eq!(status_field(&out, "CapAmb"), hex(0));
}

#[test]
fn custom_capabilities_as_root() {
    let bnd = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
    ];
    let b = Bundle::new().with(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": bnd,
            "effective": bnd,
            "permitted": bnd,
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        })
    });
    let out = run_sh(b, "grep ^Cap /proc/self/status");
    assert_eq!(status_field(&out, "CapBnd"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapPrm"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapEff"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapInh"), hex(cap_mask(&["CAP_KILL"])));
    assert_eq!(status_field(&out, "CapAmb"), hex(cap_mask(&["CAP_KILL"])));
}

#[test]
fn capabilities_as_non_root_via_ambient() {
    let bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let keep = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let b = Bundle::new().user(1000, 1000, &[]).with(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": bnd,
            "effective": keep,
            "permitted": keep,
            "inheritable": keep,
            "ambient": keep
        })
    });
    let out = run_sh(b, "grep ^Cap /proc/self/status");
    let k = hex(cap_mask(&keep));
    assert_eq!(status_field(&out, "CapBnd"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapInh"), k);
    assert_eq!(status_field(&out, "CapPrm"), k);
    assert_eq!(status_field(&out, "CapEff"), k);
    assert_eq!(status_field(&out, "CapAmb"), k);
}

#[test]
fn non_root_without_ambient_has_no_caps() {
    let b = Bundle::new().user(1000, 1000, &[]).with(|c| {
        c["process"]["capabilities"]
            .as_object_mut()
            .unwrap()
            .remove("ambient");
    });
    let out = run_sh(b, "grep ^Cap /proc/self/status");
    assert_eq!(status_field(&out, "CapEff"), hex(0));
    assert_eq!(status_field(&out, "CapPrm"), hex(0));
    assert_eq!(status_field(&out, "CapBnd"), hex(cap_mask(DEFAULT_CAPS)));
}

#[test]
fn no_new_privileges() {
    let out = run_sh(Bundle::new(), "grep NoNewPrivs /proc/self/status");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    let b = Bundle::new().with(|c| c["process"]["noNewPrivileges"] = json!(false));
    let out = run_sh(b, "grep NoNewPrivs /proc/self/status");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
}

#[test]
fn user_uid_gid_additional_gids() {
    let b = Bundle::new().user(1000, 1000, &[2000]);
    let out = run_sh(
        b,
        "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1000", "2000"], "{out}");
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Groups"), "2000");
}

#[test]
fn user_without_additional_gids_has_no_groups() {
    let b = Bundle::new().user(1000, 1000, &[]);
    let out = run_sh(b, "grep '^Groups:' /proc/self/status");
    assert_eq!(
        status_field(&out, "Groups"),
        "",
        "supplementary groups leaked"
    );
}

#[test]
fn umask_from_config() {
    let b = Bundle::new().with(|c| c["process"]["user"]["umask"] = json!(0o027));
    let out = run_sh(b, "umask");
    assert_eq!(out.trim(), "0027");
}

#[test]
fn env_vars() {
    let b = Bundle::new().env("RRUN_FOO=bar baz").env("EMPTY=");
    let out = run_sh(b, "echo \"[$RRUN_FOO]\"; env | sort");
    assert!(out.starts_with("[bar baz]\n"), "{out}");
    assert!(out.lines().any(|l| l == "EMPTY="), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("PATH=/usr/local/sbin")),
        "{out}"
    );
    // The host environment must not leak in.
    assert!(!out.contains("CARGO"), "host env leaked: {out}");
}

#[test]
fn cwd_from_config() {
    let out = run_sh(Bundle::new().cwd("/etc"), "pwd");
    assert_eq!(out, "/etc\n");
}

#[test]
fn rlimits() {
    let b = Bundle::new().with(|c| {
        c["process"]["rlimits"] = json!([
            { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512 },
            { "type": "RLIMIT_CORE", "hard": 4096, "soft": 0 }
        ])
    });
    let out = run_sh(
        b,
        "ulimit -n; ulimit -H -n; grep -E 'open files|core file' /proc/self/limits",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "512", "{out}");
    assert_eq!(lines[1], "1024", "{out}");
    let files = out.lines().find(|l| l.contains("Max open files")).unwrap();
    let f: Vec<&str> = files.split_whitespace().collect();
    assert_eq!(&f[3..5], ["512", "1024"], "{files}");
    let core = out
        .lines()
        .find(|l| l.contains("Max core file size"))
        .unwrap();
    let f: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&f[4..6], ["0", "4096"], "{core}");
}

#[test]
fn masked_paths() {
    // Only check the default masked paths that exist on this kernel.
    let files: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ]
    .into_iter()
    .filter(|p| fs::metadata(p).is_ok_and(|m| m.is_file()))
    .collect();
    let dirs: Vec<&str> = ["/proc/acpi", "/proc/scsi", "/sys/firmware"]
        .into_iter()
        .filter(|p| fs::metadata(p).is_ok_and(|m| m.is_dir()))
        .collect();
    require!(
        !files.is_empty() || !dirs.is_empty(),
        "none of the default masked paths exist on this kernel"
    );
    let mut script = String::new();
    for f in &files {
        script.push_str(&format!("echo \"{f} $(wc -c < {f})\"; "));
    }
    for d in &dirs {
        script.push_str(&format!("echo \"{d} $(ls -A {d} | wc -l)\"; "));
    }
    let out = run_sh(Bundle::new(), &script);
    let want: Vec<String> = files
        .iter()
        .chain(dirs.iter())
        .map(|p| format!("{p} 0"))
        .collect();
    let got: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got, want, "{out}");
}

#[test]
fn masked_paths_custom() {
    let b = Bundle::new().with(|c| c["linux"]["maskedPaths"] = json!(["/etc/hostname", "/home"]));
    let out = run_sh(b, "wc -c < /etc/hostname; ls -A /home | wc -l");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "0"], "{out}");
}

#[test]
fn readonly_paths() {
    let out = run_sh(
        Bundle::new(),
        "echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo WROTE || echo refused; \
         echo 1 > /proc/sysrq-trigger 2>/dev/null && echo WROTE || echo refused; \
         grep ' /proc/sys ' /proc/self/mountinfo",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["refused", "refused"], "{out}");
    let mi = lines.get(2).expect("/proc/sys is a mount point");
    let opts = mi.split_whitespace().nth(5).unwrap();
    assert!(opts.split(',').any(|o| o == "ro"), "{mi}");
}

#[test]
fn readonly_root() {
    let out = run_sh(
        Bundle::new(),
        "touch /rrun-x 2>/dev/null && echo WROTE || echo refused; \
         awk '$5 == \"/\" {print $6}' /proc/self/mountinfo",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "refused", "{out}");
    assert!(
        lines[1].split(',').any(|o| o == "ro"),
        "root mount not ro: {out}"
    );
}

#[test]
fn writable_root_when_not_readonly() {
    let c = Container::new(
        Bundle::new()
            .private_rootfs()
            .sh("echo hi > /rrun-written && echo ok"),
    );
    assert_eq!(c.run_ok(), "ok\n");
    let written = c.bundle.rootfs.join("rrun-written");
    assert_eq!(fs::read_to_string(written).unwrap(), "hi\n");
    c.assert_clean();
}

#[test]
fn network_namespace_has_only_lo() {
    let out = run_sh(
        Bundle::new(),
        "ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1",
    );
    let names: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(names, ["lo", "lo"], "{out}");
}

#[test]
fn oom_score_adj() {
    let b = Bundle::new().with(|c| c["process"]["oomScoreAdj"] = json!(523));
    let out = run_sh(b, "cat /proc/self/oom_score_adj");
    assert_eq!(out, "523\n");
}

#[test]
fn sysctl_net_and_ipc() {
    let b = Bundle::new().with(|c| {
        c["linux"]["sysctl"] = json!({
            "net.ipv4.ip_forward": "1",
            "kernel.shm_rmid_forced": "1"
        })
    });
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let out = run_sh(
        b,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced",
    );
    assert_eq!(out, "1\n1\n");
    // The host is untouched.
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_shm
    );
}

#[test]
fn sysctl_outside_namespace_is_rejected() {
    // net.* without a network namespace would change the host: refuse.
    let b = Bundle::new()
        .without_namespace("network")
        .with(|c| c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" }));
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let c = Container::new(b);
    c.create()
        .failed()
        .stderr_mentions(&["sysctl", "net.ipv4", "namespace"]);
    c.assert_clean();
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
}

fn userns_bundle() -> Bundle {
    let b = Bundle::new()
        .private_rootfs()
        .namespace("user", None)
        .with(|c| {
            c["linux"]["uidMappings"] =
                json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
            c["linux"]["gidMappings"] =
                json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        });
    // A file owned by the mapped root and one by an unmapped host uid.
    fs::write(b.rootfs.join("owned"), "x").unwrap();
    std::os::unix::fs::chown(b.rootfs.join("owned"), Some(100000), Some(100000)).unwrap();
    b
}

#[test]
fn user_namespace_mappings() {
    let b = userns_bundle();
    let out = run_sh(
        b,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c '%u:%g' /owned /etc/passwd",
    );
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[2], ["0"], "{out}");
    assert_eq!(lines[3], ["0:0"], "file of mapped root: {out}");
    // Host root is not mapped: shows as the overflow id.
    assert_eq!(lines[4], ["65534:65534"], "{out}");
}

#[test]
fn user_namespace_differs_and_host_sees_mapped_uid() {
    let b = userns_bundle().sh("exec sleep 30");
    let c = Container::new(b).created();
    let pid = c.pid();
    assert_ne!(ns_of(&pid.to_string(), "user"), ns_of("self", "user"));
    let st = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = st.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "100000"),
        "{uid}"
    );
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn cgroup_namespace() {
    let b = Bundle::new().namespace("cgroup", None);
    let out = run_sh(b, "cat /proc/self/cgroup");
    assert!(!out.is_empty());
    for l in out.lines() {
        assert!(
            l.ends_with(":/"),
            "cgroup path not / in cgroupns: {l}\n{out}"
        );
    }
}

#[test]
fn time_namespace_offsets() {
    require!(
        fs::metadata("/proc/self/timens_offsets").is_ok(),
        "kernel has no time namespaces"
    );
    require!(!is_runc(), "runc 1.1 does not support time namespaces");
    let b = Bundle::new().namespace("time", None).with(|c| {
        c["linux"]["timeOffsets"] = json!({
            "monotonic": { "secs": 86400, "nanosecs": 0 },
            "boottime": { "secs": 172800, "nanosecs": 0 }
        })
    });
    let host_uptime: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = run_sh(
        b,
        "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime",
    );
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.contains(&vec!["monotonic", "86400", "0"]), "{out}");
    assert!(lines.contains(&vec!["boottime", "172800", "0"]), "{out}");
    let up: f64 = lines.last().unwrap()[0].parse().unwrap();
    assert!(
        up >= host_uptime + 172800.0 && up < host_uptime + 172800.0 + 60.0,
        "uptime {up} vs host {host_uptime}"
    );
}

/// A network namespace pinned by a bind mount on a file under /run.
struct PinnedNetns {
    path: PathBuf,
}

impl PinnedNetns {
    fn new() -> Option<PinnedNetns> {
        let path = PathBuf::from(format!("/run/{}.netns", unique_name()));
        fs::write(&path, "").ok()?;
        let ns = PinnedNetns { path };
        let mut c = Command::new("unshare");
        c.arg(format!("--net={}", ns.path.display())).arg("true");
        run_timeout(c, TIMEOUT).success().then_some(ns)
    }
    fn inode(&self) -> u64 {
        fs::metadata(&self.path).unwrap().ino()
    }
}

impl Drop for PinnedNetns {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = fs::remove_file(&self.path);
    }
}

#[test]
fn join_existing_network_namespace_by_path() {
    require!(have_cmd("unshare"), "unshare (util-linux) not installed");
    let ns = PinnedNetns::new();
    require!(ns.is_some(), "cannot create a pinned network namespace");
    let ns = ns.unwrap();
    let b = Bundle::new().namespace("network", Some(ns.path.to_str().unwrap()));
    let out = run_sh(b, "readlink /proc/self/ns/net");
    assert_eq!(out.trim(), format!("net:[{}]", ns.inode()));
    assert_ne!(out.trim(), ns_of("self", "net"));
}

#[test]
fn join_namespace_bad_path_fails() {
    let b = Bundle::new().namespace("network", Some("/run/rrun-test-does-not-exist/net"));
    let c = Container::new(b);
    c.create().failed().stderr_is_short_error();
    c.assert_clean();
}

#[test]
fn no_network_namespace_shares_host() {
    let b = Bundle::new().without_namespace("network");
    let out = run_sh(b, "readlink /proc/self/ns/net");
    assert_eq!(out.trim(), ns_of("self", "net"));
}
