//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is
//! a transient unit of systemd's. Most checks need systemd as PID 1 (the
//! systemd VM: scripts/vm/systemd-driver-tests.sh); they skip elsewhere
//! with the reason. The refusals before any D-Bus call run everywhere.
//!
//! Every check reads systemd's own view (`systemctl show`) beside the
//! cgroup files, and runs against runc too (RRUN_BIN=runc).

#[macro_use]
mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A cgroupsPath for a unit of this test's own.
fn unit_path(slice: &str) -> (String, String) {
    let u = unique_name();
    let name = u.trim_start_matches("rrun-test-").to_string();
    (
        format!("{slice}:rrun-test:{name}"),
        format!("rrun-test-{name}.scope"),
    )
}

/// `systemctl show UNIT -p NAME` value ("" when absent).
fn show(unit: &str, prop: &str) -> String {
    let o = Command::new("systemctl")
        .args(["show", unit, "-p", prop, "--value"])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn systemd_host() -> Result<(), String> {
    if !is_root() {
        return Err("needs root".into());
    }
    if !systemd_booted() || !have_cmd("systemctl") {
        return Err(
            "systemd is not PID 1 on this host (make test runs these in the systemd VM: suite systemd-rrun; or scripts/vm/systemd-driver-tests.sh there)"
                .into(),
        );
    }
    Ok(())
}

/// The unified hierarchy's mount, on a pure v2 host.
fn unified_root() -> Option<PathBuf> {
    let hs = cgroup_hierarchies();
    let m = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = m.lines().any(|l| l.contains(" - cgroup "));
    (!v1).then(|| hs.first().map(|h| h.mountpoint.clone()))?
}

fn container(cgroups_path: &str, script: &str) -> Container {
    let mut b = Bundle::new().sh(script);
    b.cgroups_path = cgroups_path.to_string();
    let cg = cgroups_path.to_string();
    let b = b.with(|c| c["linux"]["cgroupsPath"] = json!(cg));
    Container::new(b)
}

/// `rrun --systemd-cgroup ARGS` for a container (its --root).
fn sd(c: &Container, args: &[&str]) -> Output {
    let mut all = vec!["--systemd-cgroup"];
    all.extend_from_slice(args);
    if systemd_mode() {
        // Container::cmd adds the flag already.
        all.remove(0);
    }
    c.rrun(&all)
}

fn run_detached(c: &Container) -> Output {
    c.bundle.write();
    let b = c.bundle_arg();
    let o = sd(c, &["run", "-d", "--bundle", &b, &c.id]);
    if o.success() {
        c.remember(c.pid());
    }
    o
}

#[test]
fn bad_cgroups_path_is_refused_before_anything() {
    require!(is_root(), "needs root");
    for bad in [
        "a/b",
        "system.slice:x",
        "x:p:n",
        "a--b.slice:p:n",
        "system.slice:p:a/b",
    ] {
        let c = container(bad, "true");
        let o = run_detached(&c);
        o.failed();
        if !is_runc() {
            o.stderr_mentions(&["linux.cgroupsPath", "slice:prefix:name"])
                .stderr_is_short_error();
        }
        assert!(!c.root.join(&c.id).exists(), "{bad}: state left");
    }
}

#[test]
fn no_systemd_on_the_bus_is_one_clear_line() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc as root talks to systemd's private socket (/run/systemd/private), not the bus"
    );
    let dir = tempfile::tempdir().unwrap();
    let (path, unit) = unit_path("system.slice");
    let c = container(&path, "sleep 100");
    c.bundle.write();
    let b = c.bundle_arg();
    let mut cmd = c.cmd(&[]);
    if !systemd_mode() {
        cmd.arg("--systemd-cgroup");
    }
    cmd.args(["run", "-d", "--bundle", &b, &c.id]);
    cmd.env(
        "DBUS_SYSTEM_BUS_ADDRESS",
        format!("unix:path={}/none", dir.path().display()),
    );
    cmd.stdin(std::process::Stdio::null());
    let o = run_timeout(cmd, TIMEOUT);
    o.failed();
    if !is_runc() {
        o.stderr_mentions(&["systemd is not reachable", "system bus"])
            .stderr_is_short_error();
    }
    c.assert_clean();
    if systemd_host().is_ok() {
        assert_eq!(show(&unit, "LoadState"), "not-found", "{unit} was made");
    }
}

#[test]
fn scope_has_the_properties_and_delete_stops_it() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    let (path, unit) = unit_path("system.slice");
    let mut c = container(&path, "sleep 1000");
    c.bundle = std::mem::take(&mut c.bundle).with(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        c["linux"]["resources"]["cpu"] =
            json!({"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"});
        c["linux"]["resources"]["pids"] = json!({"limit": 100});
    });
    run_detached(&c).ok();
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "Slice"), "system.slice");
    assert_eq!(show(&unit, "Delegate"), "yes");
    assert_eq!(show(&unit, "DefaultDependencies"), "no");
    // systemd's device policy never allows more than the config does.
    assert_eq!(show(&unit, "DevicePolicy"), "strict");
    assert_eq!(show(&unit, "TasksMax"), "100");
    assert_eq!(show(&unit, "CPUQuotaPerSecUSec"), "500ms");
    let cg = show(&unit, "ControlGroup");
    assert_eq!(cg, format!("/system.slice/{unit}"));
    // The init is in the unit's cgroup.
    let pid = c.pid();
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.lines().any(|l| l.ends_with(&cg)), "{own}");
    if let Some(root) = unified_root() {
        assert_eq!(show(&unit, "MemoryMax"), "67108864");
        assert_eq!(show(&unit, "AllowedCPUs"), "0");
        let dir = root.join(cg.trim_start_matches('/'));
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap().trim().to_string();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("pids.max"), "100");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("cpuset.cpus"), "0");
    }
    let st = c.state();
    assert_eq!(st["status"], "running");
    sd(&c, &["kill", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    sd(&c, &["delete", &c.id]).ok();
    assert_eq!(show(&unit, "LoadState"), "not-found", "{unit} left");
    c.assert_clean();
}

#[test]
fn delete_force_of_a_running_container_stops_the_unit() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    let (path, unit) = unit_path("system.slice");
    let c = container(&path, "sleep 1000");
    run_detached(&c).ok();
    assert_eq!(show(&unit, "ActiveState"), "active");
    sd(&c, &["delete", "--force", &c.id]).ok();
    assert_eq!(show(&unit, "LoadState"), "not-found", "{unit} left");
    c.assert_clean();
}

#[test]
fn nested_slices_as_systemd_nests_them() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    let top = format!("rrtest{}", std::process::id());
    let slice = format!("{top}-a-b.slice");
    let (path, unit) = unit_path(&slice);
    let c = container(&path, "sleep 1000");
    struct StopSlices(Vec<String>);
    impl Drop for StopSlices {
        fn drop(&mut self) {
            for s in &self.0 {
                let _ = Command::new("systemctl").args(["stop", s]).output();
            }
        }
    }
    let _guard = StopSlices(vec![
        slice.clone(),
        format!("{top}-a.slice"),
        format!("{top}.slice"),
    ]);
    run_detached(&c).ok();
    assert_eq!(
        show(&unit, "ControlGroup"),
        format!("/{top}.slice/{top}-a.slice/{top}-a-b.slice/{unit}")
    );
    assert_eq!(show(&unit, "Slice"), slice);
    sd(&c, &["delete", "--force", &c.id]).ok();
    c.assert_clean();
}

#[test]
fn a_unit_that_exists_is_refused_and_left_alone() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    let (path, unit) = unit_path("system.slice");
    let first = container(&path, "sleep 1000");
    run_detached(&first).ok();
    let first_pid = first.pid();
    let second = container(&path, "sleep 1000");
    require!(
        !is_runc(),
        "runc (1.1) runs a second container in the existing unit, with a warning that its cgroup is not empty"
    );
    let o = run_detached(&second);
    o.failed();
    if !is_runc() {
        o.stderr_mentions(&[&unit, "already exists"])
            .stderr_is_short_error();
    }
    // The first container and its unit are untouched.
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(first.status(), "running");
    let own = fs::read_to_string(format!("/proc/{first_pid}/cgroup")).unwrap();
    assert!(own.contains(&unit), "{own}");
    assert!(
        !second.root.join(&second.id).exists(),
        "the refused container's state is left"
    );
    sd(&first, &["delete", "--force", &first.id]).ok();
    first.assert_clean();
}

/// A slice systemd made itself (the implicit parent of another unit's
/// slice: active, full of that unit's processes, but with no unit file,
/// so StartTransientUnit would hand its name over) is never a container:
/// refused, and the unit in it keeps running. systemd's own slices are
/// refused by name before any call (bad_cgroups_path_is_refused_before_anything
/// and the unit tests).
#[test]
fn an_active_slice_systemd_made_is_refused_and_left_alone() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    require!(have_cmd("systemd-run"), "systemd-run is missing");
    let u = unique_name();
    let parent = format!("{}.slice", u.replace('-', ""));
    let inner = format!("{}-inner.slice", parent.trim_end_matches(".slice"));
    let service = format!("{u}-svc.service");
    let svc = Command::new("systemd-run")
        .args(["--unit", &service, "--slice", &inner, "sleep", "1000"])
        .output()
        .expect("systemd-run");
    assert!(
        svc.status.success(),
        "{}",
        String::from_utf8_lossy(&svc.stderr)
    );
    struct Stop(String, String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("systemctl").args(["stop", &self.0]).status();
            let _ = Command::new("systemctl").args(["stop", &self.1]).status();
        }
    }
    let _stop = Stop(service.clone(), parent.clone());
    assert_eq!(show(&parent, "ActiveState"), "active");
    let c = container(&format!("::{parent}"), "sleep 1000");
    let o = run_detached(&c);
    o.failed();
    if !is_runc() {
        o.stderr_mentions(&[&parent, "already exists"])
            .stderr_is_short_error();
    }
    assert_eq!(
        show(&service, "ActiveState"),
        "active",
        "the host's unit was stopped"
    );
    assert_eq!(show(&parent, "ActiveState"), "active");
    assert!(
        !c.root.join(&c.id).exists(),
        "the refused container's state is left"
    );
}

#[test]
fn update_sets_the_unit_property_and_the_file() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    let (path, unit) = unit_path("system.slice");
    let mut c = container(&path, "sleep 1000");
    c.bundle = std::mem::take(&mut c.bundle)
        .with(|c| c["linux"]["resources"]["memory"] = json!({"limit": 67108864}));
    run_detached(&c).ok();
    sd(
        &c,
        &["update", "--memory", "128M", "--pids-limit", "50", &c.id],
    )
    .ok();
    assert_eq!(show(&unit, "TasksMax"), "50");
    if let Some(root) = unified_root() {
        assert_eq!(show(&unit, "MemoryMax"), "134217728");
        let dir = root.join(show(&unit, "ControlGroup").trim_start_matches('/'));
        assert_eq!(
            fs::read_to_string(dir.join("memory.max")).unwrap().trim(),
            "134217728"
        );
    } else {
        assert_eq!(show(&unit, "MemoryLimit"), "134217728");
    }
    sd(&c, &["delete", "--force", &c.id]).ok();
    c.assert_clean();
}

#[test]
fn exec_joins_the_scope() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    let (path, unit) = unit_path("system.slice");
    let c = container(&path, "sleep 1000");
    run_detached(&c).ok();
    let o = sd(&c, &["exec", &c.id, "cat", "/proc/self/cgroup"]);
    o.ok();
    assert!(
        o.stdout.lines().all(|l| l.ends_with(&format!("/{unit}"))),
        "exec not in {unit}:\n{}",
        o.stdout
    );
    // The default devices work under both device filters (rrun's and
    // systemd's), and others are refused.
    let o = sd(
        &c,
        &[
            "exec",
            &c.id,
            "sh",
            "-c",
            "echo x > /dev/null && head -c1 /dev/urandom > /dev/null && echo devices-ok; \
             mknod /tmp/sda b 8 0 && head -c1 /tmp/sda > /dev/null && echo disk-readable",
        ],
    );
    assert!(o.stdout.contains("devices-ok"), "{o}");
    assert!(!o.stdout.contains("disk-readable"), "{o}");
    // ps and pause/resume work from the unit's cgroup.
    let ps = sd(&c, &["ps", "--format", "json", &c.id]);
    ps.ok();
    assert!(ps.stdout.contains(&c.pid().to_string()), "{}", ps.stdout);
    sd(&c, &["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    sd(&c, &["resume", &c.id]).ok();
    assert_eq!(c.status(), "running");
    sd(&c, &["delete", "--force", &c.id]).ok();
    c.assert_clean();
}

#[test]
fn a_slice_as_the_container() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    let slice = format!("rrtest{}x.slice", std::process::id());
    let path = format!("system.slice:ignored:{slice}");
    let c = container(&path, "sleep 1000");
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("systemctl").args(["stop", &self.0]).output();
        }
    }
    let _g = Stop(slice.clone());
    let o = run_detached(&c);
    if is_runc() {
        // runc asks systemd for a slice with PIDs, which systemd refuses.
        o.failed().stderr_mentions(&["PIDs"]);
        skip("runc cannot run a container as a slice: systemd refuses PIDs on a slice");
        return;
    }
    o.ok();
    assert_eq!(show(&slice, "ActiveState"), "active");
    let own = fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert!(own.contains(&format!("/{slice}")), "{own}");
    sd(&c, &["delete", "--force", &c.id]).ok();
    assert!(
        matches!(show(&slice, "ActiveState").as_str(), "inactive" | ""),
        "{slice} still {}",
        show(&slice, "ActiveState")
    );
    c.assert_clean();
}

#[test]
fn features_report_the_driver() {
    let o = run_timeout(
        {
            let mut c = Command::new(rrun_bin());
            c.arg("features");
            c
        },
        TIMEOUT,
    );
    o.ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let cg = &v["linux"]["cgroup"];
    assert_eq!(cg["systemd"], true, "{cg}");
    assert_eq!(cg["systemdUser"], true, "{cg}");
}

/// A scope of the host's own (`systemd-run --scope`) under `unit`'s name,
/// running `sleep 1000`; stopped and forgotten on drop.
struct HostScope {
    unit: String,
    child: std::process::Child,
}

impl HostScope {
    fn start(unit: &str, args: &[&str]) -> HostScope {
        let child = Command::new("systemd-run")
            .args(["--scope", "--quiet", "--slice=system.slice"])
            .arg(format!("--unit={unit}"))
            .args(args)
            .args(["sleep", "1000"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("systemd-run");
        HostScope {
            unit: unit.to_string(),
            child,
        }
    }
}

impl Drop for HostScope {
    fn drop(&mut self) {
        let _ = Command::new("systemctl")
            .args(["stop", &self.unit])
            .output();
        let _ = Command::new("systemctl")
            .args(["reset-failed", &self.unit])
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (30 s at most: the VM is slow) until `unit`'s `prop` is `want`.
fn wait_for(unit: &str, prop: &str, want: &str) {
    let got = poll(Duration::from_secs(30), || {
        (show(unit, prop) == want).then_some(())
    });
    assert!(
        got.is_some(),
        "{unit}: {prop} is {:?}, not {want:?}",
        show(unit, prop)
    );
}

/// A container's scope ends and systemd forgets it; a host scope takes
/// its name. Nothing rrun does for the container may reach that scope.
/// `older_state`: the state as rrun wrote it before it recorded the
/// unit's InvocationID (then rrun's Description tells its unit).
fn host_scope_takes_the_name(older_state: bool) {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    require!(
        !is_runc(),
        "runc (1.1) stops the unit by its name at delete, whoever holds the name by then"
    );
    let (path, unit) = unit_path("system.slice");
    // Without a pid namespace of its own the container's processes are
    // whatever is in its unit's cgroup: ps lists them, delete kills them.
    let mut c = container(&path, "sleep 1000");
    c.bundle = std::mem::take(&mut c.bundle).without_namespace("pid");
    run_detached(&c).ok();
    let f = c.root.join(&c.id).join("state.json");
    let mut st: serde_json::Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
    let u = st["systemd_unit"].as_object_mut().expect("systemd_unit");
    if older_state {
        u.remove("invocation");
        fs::write(&f, st.to_string()).unwrap();
    } else {
        // The unit's own id, as systemd shows it, is what rrun recorded.
        assert_eq!(
            u.get("invocation").and_then(|v| v.as_str()).unwrap_or(""),
            show(&unit, "InvocationID"),
            "the recorded InvocationID"
        );
    }
    sd(&c, &["kill", "--all", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    // systemd forgets the empty scope; the host then takes its name.
    wait_for(&unit, "LoadState", "not-found");
    let scope = HostScope::start(&unit, &[]);
    wait_for(&unit, "ActiveState", "active");
    let host_pid = scope.child.id().to_string();
    let mut wrong = Vec::new();
    let ps = sd(&c, &["ps", "--format", "json", &c.id]);
    if ps.stdout.contains(&host_pid) {
        wrong.push(format!(
            "ps of the stopped container lists the host scope's process {host_pid}: {ps}"
        ));
    }
    let started = std::time::Instant::now();
    sd(&c, &["delete", &c.id]).ok();
    if started.elapsed() > Duration::from_secs(20) {
        wrong.push(format!(
            "delete waited {:?} (a stop of the host's scope?)",
            started.elapsed()
        ));
    }
    if show(&unit, "ActiveState") != "active" {
        wrong.push(format!(
            "the host's scope is {}",
            show(&unit, "ActiveState")
        ));
    }
    let procs = fs::read_to_string(format!("/proc/{host_pid}/cgroup")).unwrap_or_default();
    if !procs.contains(&unit) {
        wrong.push(format!(
            "the host scope's process is gone or moved: {procs:?}"
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(!c.root.join(&c.id).exists(), "state left");
    drop(scope);
    c.assert_clean();
}

#[test]
fn a_host_scope_that_took_the_units_name_is_never_the_containers() {
    host_scope_takes_the_name(false);
}

#[test]
fn a_host_scope_that_took_the_units_name_with_an_older_state() {
    host_scope_takes_the_name(true);
}

#[test]
fn a_failed_unit_of_the_name_that_is_not_this_containers_stays_failed() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    require!(
        !is_runc(),
        "runc (1.1) ignores a unit of that name that exists (no refusal): it runs the container in \
         that unit's cgroup"
    );
    let (path, unit) = unit_path("system.slice");
    let c = container(&path, "sleep 1000");
    // A failed host scope that even reads like rrun's, of another container.
    let _scope = HostScope::start(
        &unit,
        &[
            "-p",
            "RuntimeMaxSec=1",
            "--description=rrun container someone-else",
        ],
    );
    wait_for(&unit, "ActiveState", "failed");
    let o = run_detached(&c);
    o.failed();
    o.stderr_mentions(&[&unit, "already exists"])
        .stderr_is_short_error();
    assert_eq!(show(&unit, "ActiveState"), "failed", "{unit} was reset");
    assert_eq!(
        show(&unit, "Description"),
        "rrun container someone-else",
        "{unit} was replaced"
    );
    assert!(!c.root.join(&c.id).exists(), "state left");
}

#[test]
fn a_failed_leftover_of_the_same_container_is_cleared() {
    let host = systemd_host();
    require!(host.is_ok(), "{}", host.unwrap_err());
    require!(
        !is_runc(),
        "runc (1.1) does not clear a failed leftover: it runs the container in the failed unit's \
         cgroup, which stays failed"
    );
    let (path, unit) = unit_path("system.slice");
    let c = container(&path, "sleep 1000");
    let scope = HostScope::start(
        &unit,
        &[
            "-p",
            "RuntimeMaxSec=1",
            &format!("--description=rrun container {}", c.id),
        ],
    );
    wait_for(&unit, "ActiveState", "failed");
    run_detached(&c).ok();
    assert_eq!(show(&unit, "ActiveState"), "active");
    let own = fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert!(own.contains(&unit), "{own}");
    sd(&c, &["delete", "--force", &c.id]).ok();
    assert_eq!(show(&unit, "LoadState"), "not-found", "{unit} left");
    drop(scope);
    c.assert_clean();
}
