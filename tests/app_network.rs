//! `rrun app` networking (src/app/network.rs, src/app/cni.rs) against the
//! real CNI plugins and the real kernel, driven through the module's API:
//! the modules are compiled into this test (they depend only on each other
//! and on src/app/paths.rs), and a busybox httpd run with `nsenter --net`
//! stands in for an app's container.
//!
//! Each test has its own app root (so its own run directory, bridge names,
//! subnet and CNI container ids) and a guard that detaches its apps, removes
//! its networks and its run directory, even when the test fails.
#![allow(dead_code)]

mod common;

// At the crate's top level, so the modules' `super::cni` and
// `super::paths` resolve as they do in src/app.
#[path = "../src/app/cni.rs"]
mod cni;
#[path = "../src/app/network.rs"]
mod network;
#[path = "../src/app/paths.rs"]
mod paths;

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{have_cmd, is_root, poll, skip};
use network::{Mode, NetError};
use paths::Paths;

/// Tests that compare the host before and after take this exclusively;
/// the others share it (their links and rules would show in a snapshot).
static HOST: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    HOST.read().unwrap_or_else(|e| e.into_inner())
}
fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    HOST.write().unwrap_or_else(|e| e.into_inner())
}

fn usable() -> bool {
    if !is_root() {
        skip("needs root");
        return false;
    }
    for p in ["bridge", "host-local", "portmap", "firewall", "loopback"] {
        if !Path::new("/usr/lib/cni").join(p).exists()
            && std::env::var_os("RRUN_CNI_PATH").is_none()
        {
            skip(&format!(
                "CNI plugin {p} not installed (containernetworking-plugins)"
            ));
            return false;
        }
    }
    if !have_cmd("busybox") || !have_cmd("nsenter") || !have_cmd("iptables-save") {
        skip("needs busybox, nsenter and iptables");
        return false;
    }
    true
}

/// An app root of its own; on drop: every app detached, every network
/// removed, the root and the run directory gone.
struct Root {
    _dir: tempfile::TempDir,
    paths: Paths,
    procs: Vec<Child>,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::Builder::new()
            .prefix("rrun-net-")
            .tempdir()
            .expect("temp dir");
        let paths = Paths::new(dir.path());
        Root {
            _dir: dir,
            paths,
            procs: Vec::new(),
        }
    }

    /// busybox httpd serving `body` on port 80 inside the app's netns.
    fn httpd(&mut self, app: &str, body: &str) {
        let www = self.paths.root.join(format!("www-{app}"));
        fs::create_dir_all(&www).unwrap();
        fs::write(www.join("index.html"), body).unwrap();
        let ns = self.paths.netns_dir().join(app);
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(["busybox", "httpd", "-f", "-p", "80", "-h"])
            .arg(&www)
            .stdin(Stdio::null())
            .spawn()
            .expect("nsenter busybox httpd");
        self.procs.push(child);
        let ns2 = ns.clone();
        // Listening: its port shows in the netns's /proc/net/tcp (0050 = 80).
        poll(Duration::from_secs(10), || {
            let out = Command::new("nsenter")
                .arg(format!("--net={}", ns2.display()))
                .args(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains(":0050 ")
                .then_some(())
        })
        .expect("httpd listening in the app's netns");
    }

    fn kill_procs(&mut self) {
        for mut c in self.procs.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        self.kill_procs();
        if let Ok(rd) = fs::read_dir(self.paths.apps()) {
            for e in rd.flatten() {
                let _ = network::detach(&self.paths, &e.file_name().to_string_lossy());
            }
        }
        if let Ok(nets) = network::list(&self.paths) {
            for n in nets {
                let _ = network::remove(&self.paths, &n.name);
            }
        }
        let _ = fs::remove_dir_all(&self.paths.run);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host's first global IPv4 address.
fn host_address() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.lines().next()?.split_whitespace().collect();
    Some(f.get(3)?.split('/').next()?.to_string())
}

/// What a test must leave as it found: links, iptables rules (per-container
/// ones; the plugins' shared top-level chains may stay, empty, as every CNI
/// runtime leaves them), mounts of the run directory.
#[derive(Debug, PartialEq)]
struct HostSnapshot {
    links: BTreeSet<String>,
    rules: BTreeSet<String>,
}

fn iptables_rules(save: &str) -> BTreeSet<String> {
    // The plugins' shared skeleton: created once, never removed by DEL.
    const SHARED: &[&str] = &[
        "CNI-HOSTPORT-DNAT",
        "CNI-HOSTPORT-SETMARK",
        "CNI-HOSTPORT-MASQ",
        "CNI-FORWARD",
        "CNI-ADMIN",
    ];
    let shared_line = |l: &str| {
        let chains: Vec<&str> = l
            .split_whitespace()
            .filter(|w| w.starts_with("CNI-") || w.starts_with(":CNI-"))
            .map(|w| w.trim_start_matches(':'))
            .collect();
        // A rule naming an address or a port is an app's, never skeleton.
        let specific = l.contains("--dport")
            || l.split_whitespace().any(|w| {
                w.split('/')
                    .next()
                    .is_some_and(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
            });
        !chains.is_empty() && chains.iter().all(|c| SHARED.contains(c)) && !specific
    };
    save.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('*') && l.trim() != "COMMIT")
        .map(|l| {
            // Chain lines carry packet counters: keep the name and policy.
            if l.starts_with(':') {
                l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
            } else {
                l.to_string()
            }
        })
        .filter(|l| !shared_line(l))
        // A table the plugins first used shows its built-in chains.
        .filter(|l| {
            !matches!(
                l.as_str(),
                ":PREROUTING ACCEPT"
                    | ":INPUT ACCEPT"
                    | ":FORWARD ACCEPT"
                    | ":OUTPUT ACCEPT"
                    | ":POSTROUTING ACCEPT"
            )
        })
        .collect()
}

fn snapshot(save_cmd: &str) -> HostSnapshot {
    let links = fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let out = Command::new(save_cmd).output().expect("iptables-save");
    HostSnapshot {
        links,
        rules: iptables_rules(&String::from_utf8_lossy(&out.stdout)),
    }
}

/// Nothing of `root` left on the host: no netns mount, no lease, no record.
fn assert_root_clean(root: &Root, apps: &[&str]) {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let run = root.paths.run.display().to_string();
    assert!(
        !mounts.contains(&run),
        "a mount under {run} is left:\n{mounts}"
    );
    let netns: Vec<_> = fs::read_dir(root.paths.netns_dir())
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(netns.is_empty(), "netns files left: {netns:?}");
    let ipam = root.paths.cni_state().join("ipam");
    let mut leases = Vec::new();
    if let Ok(nets) = fs::read_dir(&ipam) {
        for n in nets.flatten() {
            for f in fs::read_dir(n.path()).unwrap().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.parse::<std::net::IpAddr>().is_ok() {
                    leases.push(name);
                }
            }
        }
    }
    assert!(leases.is_empty(), "IPAM leases left: {leases:?}");
    let results: Vec<_> = fs::read_dir(root.paths.cni_state().join("results"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(results.is_empty(), "CNI results left: {results:?}");
    for a in apps {
        assert!(
            network::attachment(&root.paths, a).is_none(),
            "{a}: attachment record left"
        );
    }
}

/// What of the host is this root's, taken while its apps are attached: its
/// bridges, the host ends of its veths (from the cached CNI results), and
/// what its rules name (its CNI container ids, its subnets, its ports). The
/// comparison is limited to these, so other tests and programs running on
/// the host at the same time do not count.
#[derive(Debug, Default)]
struct Mine {
    links: BTreeSet<String>,
    words: BTreeSet<String>,
}

fn mine(root: &Root, save_cmd: &str) -> Mine {
    let mut m = Mine::default();
    m.words.insert(format!("rrun-app{}-", root.paths.tag));
    for n in network::list(&root.paths).unwrap_or_default() {
        m.links.insert(n.bridge.clone());
        // "10.88.3.0/24" -> "10.88.3."
        let prefix = n.subnet.rsplit_once('.').map_or("", |x| x.0).to_string();
        m.words.insert(format!(" {prefix}."));
    }
    if let Ok(rd) = fs::read_dir(root.paths.cni_state().join("results")) {
        for e in rd.flatten() {
            let v: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(e.path()).unwrap_or_default())
                    .unwrap_or_default();
            for i in v["interfaces"].as_array().into_iter().flatten() {
                if i.get("sandbox").is_none()
                    && let Some(name) = i["name"].as_str()
                {
                    m.links.insert(name.to_string());
                }
            }
        }
    }
    for a in fs::read_dir(root.paths.apps())
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Some(att) = network::attachment(&root.paths, &a.file_name().to_string_lossy()) {
            for p in att.ports {
                m.words.insert(format!("--dport {} ", p.host_port));
            }
        }
    }
    // Not vacuous: while attached, the filter finds this root's rules and
    // links on the host.
    let now = snapshot(save_cmd);
    let ours = now
        .rules
        .iter()
        .filter(|r| m.words.iter().any(|w| format!("{r} ").contains(w.as_str())))
        .count();
    assert!(ours > 0, "no rule of this root found by {:?}", m.words);
    assert!(
        m.links.iter().all(|l| now.links.contains(l)),
        "{:?} not all on the host",
        m.links
    );
    m
}

fn assert_host_same(before: &HostSnapshot, save_cmd: &str, mine: &Mine) {
    assert!(mine.links.len() > 1, "nothing tracked: {mine:?}");
    // A namespace's links go with it asynchronously (the kernel's netns
    // cleanup): give them a moment.
    let left = |s: &HostSnapshot| -> Vec<String> {
        s.links
            .difference(&before.links)
            .filter(|l| mine.links.contains(*l))
            .cloned()
            .collect()
    };
    let after = poll(Duration::from_secs(5), || {
        let s = snapshot(save_cmd);
        left(&s).is_empty().then_some(s)
    })
    .unwrap_or_else(|| snapshot(save_cmd));
    let new_links = left(&after);
    assert!(new_links.is_empty(), "links left: {new_links:?}");
    let new_rules: Vec<_> = after
        .rules
        .difference(&before.rules)
        .filter(|r| {
            mine.words
                .iter()
                .any(|w| format!("{r} ").contains(w.as_str()))
        })
        .collect();
    assert!(new_rules.is_empty(), "iptables rules left: {new_rules:#?}");
}

/// Runs the port test with the iptables backend `save_cmd` belongs to.
fn published_ports(save_cmd: &str) {
    let _host = exclusive();
    published_ports_unlocked(save_cmd);
}

fn published_ports_unlocked(save_cmd: &str) {
    let before = snapshot(save_cmd);
    let tracked;
    {
        let mut root = Root::new();
        let local = free_port();
        let any = free_port();
        let ports = vec![
            network::parse_port(&format!("127.0.0.1:{local}:80")).unwrap(),
            network::parse_port(&format!("{any}:80")).unwrap(),
        ];
        network::check_ports(&root.paths, &ports).unwrap();
        let t0 = std::time::Instant::now();
        let att =
            network::attach(&root.paths, "web", &Mode::Bridge("rrun0".into()), &ports).unwrap();
        eprintln!(
            "attach (bridge, 2 ports, first on its network): {:?}",
            t0.elapsed()
        );
        assert!(att.ip.is_some(), "{att:?}");
        assert_eq!(
            att.netns.as_deref(),
            Some(root.paths.netns_dir().join("web").as_path())
        );
        // The same port again is refused: another app of this root has it.
        let again = network::check_ports(&root.paths, &ports[..1]).unwrap_err();
        assert!(matches!(again, NetError::PortTaken { .. }), "{again}");
        network::check_ports_except(&root.paths, Some("web"), &ports[..1]).unwrap();
        // The rules are in this backend's tables.
        let save = Command::new(save_cmd).output().unwrap();
        let save = String::from_utf8_lossy(&save.stdout);
        assert!(
            save.contains(&format!("--dport {local}")),
            "{save_cmd} has no DNAT for {local}:\n{save}"
        );
        root.httpd("web", "hello from web\n");
        // From the host's own localhost (portmap's hairpin SNAT +
        // route_localnet), and on the host's address.
        let got = poll(Duration::from_secs(10), || {
            curl(&format!("http://127.0.0.1:{local}/"))
        });
        assert_eq!(
            got.as_deref(),
            Some("hello from web\n"),
            "127.0.0.1:{local}"
        );
        if let Some(addr) = host_address() {
            let got = poll(Duration::from_secs(10), || {
                curl(&format!("http://{addr}:{any}/"))
            });
            assert_eq!(got.as_deref(), Some("hello from web\n"), "{addr}:{any}");
        }
        // Bound only on 127.0.0.1: not on the host's address.
        if let Some(addr) = host_address() {
            assert_eq!(
                curl(&format!("http://{addr}:{local}/")),
                None,
                "127.0.0.1-only port answers on {addr}"
            );
        }
        let info = network::list(&root.paths).unwrap();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].apps, vec!["web".to_string()]);
        tracked = mine(&root, save_cmd);
        root.kill_procs();
        let t0 = std::time::Instant::now();
        network::detach(&root.paths, "web").unwrap();
        eprintln!("detach (last on its network): {:?}", t0.elapsed());
        network::detach(&root.paths, "web").unwrap(); // idempotent
        assert_root_clean(&root, &["web"]);
        assert_eq!(curl(&format!("http://127.0.0.1:{local}/")), None);
        network::remove(&root.paths, "rrun0").unwrap();
    }
    assert_host_same(&before, save_cmd, &tracked);
}

/// Removes the plugins' shared chains from a backend where this test put
/// them first: only their own fixed rules are deleted, and a chain that
/// still holds anything else is kept (-X fails on it).
fn remove_skeleton(iptables: &str) {
    let run = |args: &[&str]| {
        let _ = Command::new(iptables)
            .args(args)
            .stderr(Stdio::null())
            .status();
    };
    run(&[
        "-t",
        "filter",
        "-D",
        "FORWARD",
        "-m",
        "comment",
        "--comment",
        "CNI firewall plugin rules",
        "-j",
        "CNI-FORWARD",
    ]);
    run(&[
        "-t",
        "filter",
        "-D",
        "CNI-FORWARD",
        "-m",
        "comment",
        "--comment",
        "CNI firewall plugin admin overrides",
        "-j",
        "CNI-ADMIN",
    ]);
    run(&["-t", "filter", "-X", "CNI-FORWARD"]);
    run(&["-t", "filter", "-X", "CNI-ADMIN"]);
    for chain in ["PREROUTING", "OUTPUT"] {
        run(&[
            "-t",
            "nat",
            "-D",
            chain,
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            "CNI-HOSTPORT-DNAT",
        ]);
    }
    run(&[
        "-t",
        "nat",
        "-D",
        "POSTROUTING",
        "-m",
        "comment",
        "--comment",
        "CNI portfwd requiring masquerade",
        "-j",
        "CNI-HOSTPORT-MASQ",
    ]);
    run(&[
        "-t",
        "nat",
        "-D",
        "CNI-HOSTPORT-MASQ",
        "-m",
        "mark",
        "--mark",
        "0x2000/0x2000",
        "-j",
        "MASQUERADE",
    ]);
    run(&[
        "-t",
        "nat",
        "-D",
        "CNI-HOSTPORT-SETMARK",
        "-m",
        "comment",
        "--comment",
        "CNI portfwd masquerade mark",
        "-j",
        "MARK",
        "--set-xmark",
        "0x2000/0x2000",
    ]);
    for chain in [
        "CNI-HOSTPORT-DNAT",
        "CNI-HOSTPORT-MASQ",
        "CNI-HOSTPORT-SETMARK",
    ] {
        run(&["-t", "nat", "-X", chain]);
    }
}

#[test]
fn published_port_answers_on_localhost_and_host_address_nft() {
    if !usable() {
        return;
    }
    published_ports("iptables-save");
}

/// The same with iptables-legacy: the plugins run `iptables` from PATH, so
/// a directory whose iptables* are the legacy ones goes first on PATH (in a
/// child test process, so the host's default and the other tests' PATH
/// stay as they are).
#[test]
fn published_port_answers_with_iptables_legacy() {
    if !usable() {
        return;
    }
    if std::env::var_os("RRUN_TEST_LEGACY_CHILD").is_some() {
        let had = Command::new("iptables-legacy-save").output().unwrap();
        let had = String::from_utf8_lossy(&had.stdout).contains(":CNI-");
        published_ports_unlocked("iptables-legacy-save");
        if !had {
            remove_skeleton("iptables-legacy");
        }
        return;
    }
    if !have_cmd("iptables-legacy") {
        skip("iptables-legacy not installed");
        return;
    }
    let _host = exclusive();
    let bin = tempfile::tempdir().unwrap();
    for (name, target) in [
        ("iptables", "iptables-legacy"),
        ("iptables-save", "iptables-legacy-save"),
        ("iptables-restore", "iptables-legacy-restore"),
        ("ip6tables", "ip6tables-legacy"),
        ("ip6tables-save", "ip6tables-legacy-save"),
        ("ip6tables-restore", "ip6tables-legacy-restore"),
    ] {
        std::os::unix::fs::symlink(Path::new("/usr/sbin").join(target), bin.path().join(name))
            .unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "published_port_answers_with_iptables_legacy",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RRUN_TEST_LEGACY_CHILD", "1")
        .env("PATH", path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "legacy child:\n{text}"
    );
    // The rules went into the legacy tables, not nft's.
}

#[test]
fn apps_reach_each_other_by_name() {
    if !usable() {
        return;
    }
    let _host = shared();
    let mut root = Root::new();
    let n = network::create(&root.paths, "backend", None).unwrap();
    assert!(n.subnet.ends_with("/24"), "{n:?}");
    let backend = Mode::Bridge("backend".into());
    let a = network::attach(&root.paths, "alpha", &backend, &[]).unwrap();
    let b = network::attach(&root.paths, "beta", &backend, &[]).unwrap();
    // Both hosts files know both names (alpha's was rewritten in place
    // when beta came: same inode).
    let ha = fs::read_to_string(network::hosts_path(&root.paths, "alpha")).unwrap();
    let hb = fs::read_to_string(network::hosts_path(&root.paths, "beta")).unwrap();
    for h in [&ha, &hb] {
        assert!(h.contains(&format!("{}\talpha\n", a.ip.unwrap())), "{h}");
        assert!(h.contains(&format!("{}\tbeta\n", b.ip.unwrap())), "{h}");
    }
    network::check(&root.paths, "alpha").unwrap();
    network::check(&root.paths, "beta").unwrap();
    root.httpd("beta", "beta here\n");
    // alpha, with its hosts file as /etc/hosts (a private mount namespace),
    // fetches http://beta/.
    let hosts = network::hosts_path(&root.paths, "alpha");
    let ns = root.paths.netns_dir().join("alpha");
    let script = format!(
        "mount --bind {} /etc/hosts && curl -sS --max-time 5 http://beta/",
        hosts.display()
    );
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args([
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("beta here"),
        "alpha -> http://beta/: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = inode(&hosts);
    // CHECK sees what ADD made go missing (here: beta's default route).
    let beta_ns = root.paths.netns_dir().join("beta");
    let st = Command::new("nsenter")
        .arg(format!("--net={}", beta_ns.display()))
        .args(["ip", "route", "del", "default"])
        .status()
        .unwrap();
    assert!(st.success());
    let e = network::check(&root.paths, "beta").unwrap_err();
    assert!(e.to_string().contains("CHECK"), "{e}");
    // beta leaves: alpha's hosts file forgets it, in place.
    root.kill_procs();
    network::detach(&root.paths, "beta").unwrap();
    let ha = fs::read_to_string(&hosts).unwrap();
    assert!(!ha.contains("beta"), "{ha}");
    assert_eq!(
        inode(&hosts),
        before,
        "hosts file replaced instead of rewritten"
    );
    // In use: not removable.
    let e = network::remove(&root.paths, "backend").unwrap_err();
    assert!(e.to_string().contains("alpha"), "{e}");
    network::detach(&root.paths, "alpha").unwrap();
    network::remove(&root.paths, "backend").unwrap();
    assert_root_clean(&root, &["alpha", "beta"]);
}

/// kill -9 of everything after attach (c1), and of `attach` itself half-way
/// through ADD (c2: a child test process whose portmap plugin SIGKILLs it,
/// after bridge's ADD): detach, from the files alone, leaves nothing.
#[test]
fn detach_after_crash_leaves_nothing() {
    if !usable() {
        return;
    }
    if let Some(root) = std::env::var_os("RRUN_TEST_CRASH_CHILD") {
        let paths = Paths::new(Path::new(&root));
        let r = network::attach(&paths, "c2", &Mode::Bridge("crashnet".into()), &[]);
        panic!("the fake portmap did not kill this process: {r:?}");
    }
    let _host = exclusive();
    let before = snapshot("iptables-save");
    let tracked;
    {
        let mut root = Root::new();
        network::create(&root.paths, "crashnet", None).unwrap();
        let m = Mode::Bridge("crashnet".into());
        let p1 = network::parse_port(&format!("127.0.0.1:{}:80", free_port())).unwrap();
        network::attach(&root.paths, "c1", &m, &[p1]).unwrap();
        root.httpd("c1", "x");
        // SIGKILL of the app's processes; its netns stays (bind mount).
        root.kill_procs();

        let plugins = tempfile::tempdir().unwrap();
        for p in ["bridge", "host-local", "firewall", "loopback"] {
            std::os::unix::fs::symlink(Path::new("/usr/lib/cni").join(p), plugins.path().join(p))
                .unwrap();
        }
        let fake = plugins.path().join("portmap");
        fs::write(&fake, "#!/bin/sh\nkill -9 $PPID\nsleep 5\n").unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&fake)
            .status()
            .unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "detach_after_crash_leaves_nothing",
                "--nocapture",
            ])
            .env("RRUN_TEST_CRASH_CHILD", &root.paths.root)
            .env("RRUN_CNI_PATH", plugins.path())
            .output()
            .unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9),
            "child: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Half-way: the bridge's ADD happened (a lease, a veth).
        assert!(network::attachment(&root.paths, "c2").is_some());
        let lease_dir = root.paths.cni_state().join("ipam").join("crashnet");
        assert!(
            fs::read_dir(&lease_dir).unwrap().count() > 2,
            "no lease for c2 in {}",
            lease_dir.display()
        );
        tracked = mine(&root, "iptables-save");
        // Only the files on disk: a new process (this one) detaches.
        network::detach(&root.paths, "c1").unwrap();
        network::detach(&root.paths, "c2").unwrap();
        assert_root_clean(&root, &["c1", "c2"]);
        network::remove(&root.paths, "crashnet").unwrap();
    }
    assert_host_same(&before, "iptables-save", &tracked);
}

#[test]
fn parallel_attaches() {
    if !usable() {
        return;
    }
    let _host = exclusive();
    // RRUN_TEST_PARALLEL=50 for the app suite's scale.
    let n_env = std::env::var("RRUN_TEST_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok());
    let n: usize = n_env.unwrap_or(20);
    let before = snapshot("iptables-save");
    let tracked;
    {
        let root = Root::new();
        network::create(&root.paths, "par", None).unwrap();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let t0 = std::time::Instant::now();
        let ips: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..n)
                .map(|i| {
                    let paths = &root.paths;
                    let port = ports[i];
                    s.spawn(move || {
                        let p = network::parse_port(&format!("127.0.0.1:{port}:80")).unwrap();
                        network::attach(paths, &format!("p{i}"), &Mode::Bridge("par".into()), &[p])
                            .map(|a| a.ip.unwrap())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let attach_time = t0.elapsed();
        let ips: Vec<_> = ips.into_iter().map(|r| r.unwrap()).collect();
        let distinct: BTreeSet<_> = ips.iter().collect();
        assert_eq!(distinct.len(), n, "{ips:?}");
        // Every hosts file lists all n apps.
        let h = fs::read_to_string(network::hosts_path(&root.paths, "p0")).unwrap();
        assert_eq!(h.lines().count(), n + 2, "{h}");
        tracked = mine(&root, "iptables-save");
        let t1 = std::time::Instant::now();
        std::thread::scope(|s| {
            for i in 0..n {
                let paths = &root.paths;
                s.spawn(move || network::detach(paths, &format!("p{i}")).unwrap());
            }
        });
        eprintln!(
            "{n} parallel attaches: {attach_time:?}, detaches: {:?}",
            t1.elapsed()
        );
        let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        assert_root_clean(&root, &names.iter().map(String::as_str).collect::<Vec<_>>());
        network::remove(&root.paths, "par").unwrap();
    }
    assert_host_same(&before, "iptables-save", &tracked);
}

#[test]
fn subnets_avoid_routes_and_other_networks() {
    if !usable() {
        return;
    }
    let _host = shared();
    let root = Root::new();
    let other = Root::new();
    let a = network::create(&root.paths, "a", None).unwrap();
    let b = network::create(&root.paths, "b", None).unwrap();
    // Another app root on the same host does not get the same subnets.
    let c = network::create(&other.paths, "a", None).unwrap();
    let set: BTreeSet<_> = [&a.subnet, &b.subnet, &c.subnet].into_iter().collect();
    assert_eq!(set.len(), 3, "{a:?} {b:?} {c:?}");
    assert_ne!(a.bridge, c.bridge);
    // Given subnets are checked: overlap, host bits, the host's routes.
    let e = network::create(&root.paths, "d", Some(&a.subnet)).unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
    let e = network::create(&root.paths, "d", Some("10.250.0.7/24")).unwrap_err();
    assert!(e.to_string().contains("host bits"), "{e}");
    let routes = fs::read_to_string("/proc/net/route").unwrap();
    if routes.lines().count() > 2 {
        // The host's connected subnet (from `ip -4 route`).
        let out = Command::new("ip")
            .args(["-4", "route", "show", "scope", "link"])
            .output()
            .unwrap();
        if let Some(r) = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            && r.contains('/')
        {
            let e = network::create(&root.paths, "d", Some(r)).unwrap_err();
            assert!(e.to_string().contains("route"), "{r}: {e}");
        }
    }
    let e = network::create(&root.paths, "host", None).unwrap_err();
    assert!(matches!(e, NetError::Reserved(_)), "{e}");
    let e = network::create(&root.paths, "a", None).unwrap_err();
    assert!(matches!(e, NetError::Exists(_)), "{e}");
    let e = network::remove(&root.paths, "nope").unwrap_err();
    assert!(matches!(e, NetError::NoSuchNetwork(_)), "{e}");
    let e = network::create(&root.paths, "bad/name", None).unwrap_err();
    assert!(e.to_string().contains("bad/name"), "{e}");
    let names: Vec<_> = network::list(&root.paths)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, vec!["a", "b"]);
}

#[test]
fn port_in_use_on_the_host_is_refused() {
    if !usable() {
        return;
    }
    let _host = shared();
    let root = Root::new();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let p = network::parse_port(&format!("{port}:80")).unwrap();
    let e = network::check_ports(&root.paths, &[p]).unwrap_err();
    assert!(
        matches!(e, NetError::PortInUse(_)) && e.to_string().contains(&port.to_string()),
        "{e}"
    );
    let p = network::parse_port(&format!("127.0.0.1:{port}:80/udp")).unwrap();
    network::check_ports(&root.paths, &[p]).unwrap();
}

/// A missing plugin: one line naming it and where it was looked for, and
/// nothing done (no namespace, record, lease, hosts file, nor even the
/// default network's definition). In a child test process: the plugin
/// directory comes from $RRUN_CNI_PATH.
#[test]
fn missing_plugin_is_named_and_leaves_nothing() {
    if !usable() {
        return;
    }
    if let Some(dir) = std::env::var_os("RRUN_TEST_CNI_CHILD") {
        assert_eq!(
            std::env::var_os("RRUN_CNI_PATH").as_deref(),
            Some(dir.as_os_str())
        );
        let root = Root::new();
        let e = network::attach(&root.paths, "m", &Mode::Bridge("rrun0".into()), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "CNI plugin \"portmap\" not found in {}",
                dir.to_string_lossy()
            )
        );
        assert_root_clean(&root, &["m"]);
        assert!(!root.paths.app("m").join("hosts").exists());
        assert!(network::list(&root.paths).unwrap().is_empty());
        assert!(network::check_plugins(&Mode::Host).is_ok());
        let e = network::attach(&root.paths, "m", &Mode::None, &[]).unwrap_err();
        assert!(
            e.to_string().contains("loopback") || e.to_string().contains("portmap"),
            "{e}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for p in ["bridge", "host-local", "firewall"] {
        std::os::unix::fs::symlink(Path::new("/usr/lib/cni").join(p), dir.path().join(p)).unwrap();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "missing_plugin_is_named_and_leaves_nothing",
            "--nocapture",
        ])
        .env("RRUN_TEST_CNI_CHILD", dir.path())
        .env("RRUN_CNI_PATH", dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child:\n{text}"
    );
}

#[test]
fn none_and_host_modes() {
    if !usable() {
        return;
    }
    let _host = shared();
    let root = Root::new();
    let a = network::attach(&root.paths, "solo", &Mode::None, &[]).unwrap();
    let ns: PathBuf = a.netns.clone().unwrap();
    // Only lo, and up.
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["ip", "-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&out.stdout);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    assert!(network::is_live(&a));
    // Attaching again (a record left by a crash) replaces it.
    let a2 = network::attach(&root.paths, "solo", &Mode::None, &[]).unwrap();
    assert!(network::is_live(&a2));
    let h = fs::read_to_string(network::hosts_path(&root.paths, "solo")).unwrap();
    assert!(h.contains("localhost") && h.contains("solo"), "{h}");
    let p = network::parse_port("8080:80").unwrap();
    let e = network::attach(&root.paths, "hosty", &Mode::Host, &[p]).unwrap_err();
    assert!(e.to_string().contains("--network host"), "{e}");
    let h = network::attach(&root.paths, "hosty", &Mode::Host, &[]).unwrap();
    assert!(h.netns.is_none());
    assert!(network::resolv_path(&root.paths, "hosty").exists());
    network::detach(&root.paths, "solo").unwrap();
    assert!(!network::is_live(&a2));
    network::detach(&root.paths, "hosty").unwrap();
    assert_root_clean(&root, &["solo", "hosty"]);
}

/// Apps started at once with the same host port: exactly one gets it, the
/// others fail naming it and leave nothing.
#[test]
fn same_port_at_once_goes_to_one_app() {
    if !usable() {
        return;
    }
    let _host = shared();
    let root = Root::new();
    network::create(&root.paths, "race", None).unwrap();
    let port = free_port();
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let paths = &root.paths;
                s.spawn(move || {
                    let p = network::parse_port(&format!("127.0.0.1:{port}:80")).unwrap();
                    network::attach(paths, &format!("r{i}"), &Mode::Bridge("race".into()), &[p])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok: Vec<_> = (0..4).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    for (i, r) in results.iter().enumerate() {
        if let Err(e) = r {
            assert!(
                matches!(e, NetError::PortTaken { .. })
                    && e.to_string().contains(&port.to_string()),
                "{e}"
            );
            let app = format!("r{i}");
            assert!(
                network::attachment(&root.paths, &app).is_none(),
                "{app}: record left"
            );
            assert!(
                !root.paths.netns_dir().join(&app).exists(),
                "{app}: netns left"
            );
        }
    }
    let p = network::parse_port("[::1]:8080:80").unwrap();
    let e = network::check_ports(&root.paths, &[p]).unwrap_err();
    assert!(e.to_string().contains("IPv6"), "{e}");
    network::detach(&root.paths, &format!("r{}", ok[0])).unwrap();
    assert_root_clean(&root, &["r0", "r1", "r2", "r3"]);
}
