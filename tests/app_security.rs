//! `rrun app` against hostile input: an image, the processes of an app
//! (root in its namespaces with Docker's default capabilities), another
//! local user. Each test names a class of attack and fails while rrun is
//! open to it. Every test has its own app root and removes what it made.

#[macro_use]
mod common;

use common::app::*;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// Runs a shell line as the unprivileged user nobody (65534).
fn as_nobody(script: &str) -> Output {
    sh(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '{script}'"
    ))
}

// ---------------------------------------------------------------------------
// (a)+(b) -> (c): the app root on the host is the container's filesystem
// ---------------------------------------------------------------------------

/// What an app writes (a setuid-root program, its secrets) and what its
/// image ships lie on the host under the app root, in the app's upper
/// directory, its overlay mount and the image store: no other local user
/// may reach any of it (Docker keeps /var/lib/docker 0710 for this). A
/// setuid-root file there is host root for whoever can execute it.
#[test]
fn app_root_is_closed_to_other_local_users() {
    if !ensure_root() {
        return;
    }
    require!(have_cmd("setpriv"), "needs setpriv");
    let env = Env::new();
    // The app root's parent is open to all, as /var/lib is.
    set_mode(env.root(), 0o755);
    let img = image_with_modes(
        env.root(),
        "suid",
        &[("/shipped-suid", b"#!/bin/sh\nid\n", 0o4755)],
    );
    env.app(&[
        "run",
        "-d",
        "--name",
        "suid",
        "-e",
        "SECRET=hunter2",
        "-v",
        "vol1:/data",
        img.to_str().unwrap(),
        "sh",
        "-c",
        "cp /bin/busybox /planted; chmod 4755 /planted; cp /planted /data/planted; \
         echo x > /data/marker; sleep 1000",
    ])
    .ok();
    let root = env.root().to_path_buf();
    let app = root.join("apps/suid");
    poll(Duration::from_secs(20), || {
        app.join("upper/planted").exists().then_some(())
    })
    .expect("the app wrote its file");
    poll(Duration::from_secs(20), || {
        root.join("volumes/vol1/marker").exists().then_some(())
    })
    .expect("the app wrote its volume");
    let layer = fs::read_dir(root.join("store/layers"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("shipped-suid").exists())
        .expect("the image's layer");
    let mut reached = Vec::new();
    for p in [
        app.join("upper/planted"),
        app.join("bundle/rootfs/planted"),
        app.join("app.json"),
        root.join("volumes/vol1/planted"),
        layer.join("shipped-suid"),
    ] {
        let out = as_nobody(&format!("test -e {}", p.display()));
        if out.success() {
            reached.push(p.display().to_string());
        }
    }
    assert!(
        reached.is_empty(),
        "another local user reaches an app's files on the host: {reached:?}"
    );
    env.app(&["rm", "-f", "suid"]).ok();
}

// ---------------------------------------------------------------------------
// (b) -> another app: the apps of one network share a bridge
// ---------------------------------------------------------------------------

/// One IPv6 router advertisement on eth0 (prefix 2001:db8:bad::/64 and a
/// default route), as any app may send: it is root with CAP_NET_RAW.
const SEND_RA: &str = r#"
import socket, struct, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
ifi = socket.if_nametoindex("eth0")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifi)
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
pio = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + socket.inet_pton(socket.AF_INET6, "2001:db8:bad::")
for _ in range(5):
    s.sendto(ra + pio, ("ff02::1", 0, 0, ifi))
    time.sleep(0.1)
"#;

/// An app on a network must not take routes or addresses from another
/// app's router advertisements (CVE-2020-13401's class): it would send
/// its IPv6 traffic through the other app.
#[test]
fn apps_on_a_network_cannot_reroute_each_other() {
    if !ensure_root() {
        return;
    }
    require!(have_cmd("python3"), "needs python3 (raw ICMPv6 sender)");
    require!(
        Path::new("/proc/sys/net/ipv6").exists(),
        "needs IPv6 in the kernel"
    );
    let env = Env::new();
    let img = image_with_modes(env.root(), "plain", &[]);
    let net = format!("rt{}", std::process::id());
    env.app(&["network", "create", &net]).ok();
    for n in ["victim", "attacker"] {
        env.app(&[
            "run",
            "-d",
            "--name",
            n,
            "--network",
            &net,
            img.to_str().unwrap(),
            "sleep",
            "1000",
        ])
        .ok();
    }
    let pid = |n: &str| {
        fs::read_to_string(env.root().join(format!("apps/{n}/init.pid")))
            .unwrap()
            .trim()
            .to_string()
    };
    let script = env.root().join("ra.py");
    fs::write(&script, SEND_RA).unwrap();
    // The attacker's own network namespace, as its processes have it.
    sh(&format!(
        "nsenter -t {} -n python3 {}",
        pid("attacker"),
        script.display()
    ))
    .ok();
    std::thread::sleep(Duration::from_millis(500));
    let routes = sh(&format!("nsenter -t {} -n ip -6 route", pid("victim")));
    routes.ok();
    let addrs = sh(&format!("nsenter -t {} -n ip -6 addr", pid("victim")));
    assert!(
        !routes.stdout.contains("2001:db8:bad") && !addrs.stdout.contains("2001:db8:bad"),
        "an app took another app's router advertisement:\n{}{}",
        routes.stdout,
        addrs.stdout
    );
    env.app(&["rm", "-f", "victim", "attacker"]).ok();
    env.app(&["network", "rm", &net]).ok();
}

// ---------------------------------------------------------------------------
// (c): another local user against rrun's own coordination
// ---------------------------------------------------------------------------

/// flock(2) needs only a read-only fd: a lock file any local user can open
/// (or plant, in a world-writable directory) lets that user wedge an app's
/// stop, restart and rm, its monitor's restarts, and every network change.
#[test]
fn app_locks_cannot_be_held_by_other_local_users() {
    if !ensure_root() {
        return;
    }
    require!(
        have_cmd("setpriv") && have_cmd("flock"),
        "needs setpriv and flock"
    );
    let env = Env::new();
    let img = image_with_modes(env.root(), "plain", &[]);
    env.app(&[
        "run",
        "-d",
        "--name",
        "held",
        img.to_str().unwrap(),
        "sleep",
        "1000",
    ])
    .ok();
    let out = env.app(&["inspect", "held"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    let run = Path::new(v[0]["paths"]["runtimeRoot"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    // Every lock rrun has made: this root's and the host-wide ones.
    let files = sh(&format!(
        "find {} /run/lock /run -maxdepth 2 -name '*.lock' 2>/dev/null | grep -e {} -e rrun-app",
        run.display(),
        run.display()
    ));
    let files: Vec<&str> = files.stdout.lines().collect();
    assert!(
        !files.is_empty(),
        "no lock files found under {}",
        run.display()
    );
    // nobody takes every lock it can open, for 15 s (no process to stop
    // afterwards: the holders end by themselves).
    let list = files.join(" ");
    let held = as_nobody(&format!(
        "for f in {list}; do (flock -n \"$f\" sleep 15 >/dev/null 2>&1 &) ; done; sleep 0.5"
    ));
    let _ = held;
    let stop = run_timeout(
        env.cmd(&["stop", "-t", "1", "held"]),
        Duration::from_secs(10),
    );
    let net = format!("rl{}", std::process::id());
    let create = run_timeout(
        env.cmd(&["network", "create", &net]),
        Duration::from_secs(10),
    );
    assert!(
        stop.success() && create.success(),
        "another local user's flock wedged rrun app (stop: {:?} {}; network create: {:?} {})",
        stop.code,
        stop.stderr,
        create.code,
        create.stderr
    );
    env.app(&["rm", "-f", "held"]).ok();
    env.app(&["network", "rm", &net]).ok();
}

/// One UDP datagram to the host's 127.0.0.1:PORT, as an AF_PACKET frame to
/// the gateway's MAC: what any app (root with CAP_NET_RAW) can send.
const SEND_TO_HOST_LOCALHOST: &str = r#"
import socket, struct, sys, time
port = int(sys.argv[1]); msg = sys.argv[2].encode()
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b)//2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
gw = None
for l in open("/proc/net/route").read().splitlines()[1:]:
    f = l.split()
    if f[1] == "00000000":
        gw = socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect((gw, 9)); me = u.getsockname()[0]
u.send(b"x"); time.sleep(0.3)
mac = [l.split()[3] for l in open("/proc/net/arp").read().splitlines()[1:] if l.split()[0] == gw][0]
dst = bytes.fromhex(mac.replace(":", ""))
src = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
udp = struct.pack("!HHHH", 40000, port, 8 + len(msg), 0) + msg
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(me), socket.inet_aton("127.0.0.1"))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
p.bind(("eth0", 0))
for _ in range(3):
    p.send(dst + src + b"\x08\x00" + ip + udp)
    time.sleep(0.1)
"#;

/// Services the host binds to 127.0.0.1 are the host's alone: publishing
/// a port on 127.0.0.1 (route_localnet on the bridge, for the host's own
/// localhost) must not open them to the apps (CVE-2020-8558's class).
#[test]
fn apps_cannot_reach_the_hosts_localhost() {
    if !ensure_root() {
        return;
    }
    require!(have_cmd("python3"), "needs python3 (raw frame sender)");
    let env = Env::new();
    let img = image_with_modes(env.root(), "plain", &[]);
    let net = format!("rh{}", std::process::id());
    env.app(&["network", "create", &net]).ok();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    env.app(&[
        "run",
        "-d",
        "--name",
        "pub",
        "--network",
        &net,
        "-p",
        &publish,
        img.to_str().unwrap(),
        "sleep",
        "1000",
    ])
    .ok();
    env.app(&[
        "run",
        "-d",
        "--name",
        "evil",
        "--network",
        &net,
        img.to_str().unwrap(),
        "sleep",
        "1000",
    ])
    .ok();
    // A service of the host's own, on 127.0.0.1 only.
    let service = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    service
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let target = service.local_addr().unwrap().port();
    let script = env.root().join("localnet.py");
    fs::write(&script, SEND_TO_HOST_LOCALHOST).unwrap();
    let pid = fs::read_to_string(env.root().join("apps/evil/init.pid")).unwrap();
    sh(&format!(
        "nsenter -t {} -n python3 {} {target} from-the-app",
        pid.trim(),
        script.display()
    ))
    .ok();
    let mut buf = [0u8; 64];
    let got = service.recv_from(&mut buf);
    assert!(
        got.is_err(),
        "an app reached the host's 127.0.0.1:{target}: {:?}",
        got.map(|(n, a)| (String::from_utf8_lossy(&buf[..n]).into_owned(), a))
    );
    env.app(&["rm", "-f", "pub", "evil"]).ok();
    env.app(&["network", "rm", &net]).ok();
}

// ---------------------------------------------------------------------------
// (b) -> host: what an app prints is read by rrun on the host
// ---------------------------------------------------------------------------

/// The app decides what its output looks like: output that never ends a
/// line must not make `rrun app logs -f` (run on the host, often for
/// long) hold it all: its memory is bounded whatever the app prints.
#[test]
fn log_reader_memory_is_bounded_whatever_the_app_prints() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = image_with_modes(env.root(), "plain", &[]);
    env.app(&[
        "run",
        "-d",
        "--name",
        "nonl",
        "--log-max-size",
        "1m",
        "--log-max-files",
        "2",
        img.to_str().unwrap(),
        "sh",
        "-c",
        "tr '\\0' a < /dev/zero",
    ])
    .ok();
    let mut follower = env
        .cmd(&["logs", "-f", "nonl"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = follower.id();
    let rss_kb = || -> u64 {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let mut peak = 0;
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(rss_kb());
    }
    let _ = follower.kill();
    let _ = follower.wait();
    env.app(&["rm", "-f", "nonl"]).ok();
    assert!(
        peak < 128 * 1024,
        "`logs -f` of an app printing no newline grew to {peak} kB"
    );
}

// ---------------------------------------------------------------------------
// (b) -> host kernel: what an app may ask of the kernel
// ---------------------------------------------------------------------------

/// An app is the host's uid 0 with a few capabilities; without a syscall
/// filter it can make a user namespace and hold every capability there
/// (mounts, netfilter: the kernel surface most container escapes use), and
/// reach the host root's keyrings (same uid). Docker's default profile
/// refuses these; an app must too.
#[test]
fn apps_cannot_open_kernel_surface_beyond_their_capabilities() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = image_with_modes(env.root(), "plain", &[]);
    env.app(&[
        "run",
        "-d",
        "--name",
        "ns",
        img.to_str().unwrap(),
        "sh",
        "-c",
        "if unshare -U -r true; then echo userns-open; else echo userns-closed; fi; sleep 1000",
    ])
    .ok();
    let said = poll(Duration::from_secs(20), || {
        let out = env.app(&["logs", "ns"]);
        out.stdout.contains("userns-").then(|| out.stdout.clone())
    })
    .expect("the app reported");
    env.app(&["rm", "-f", "ns"]).ok();
    assert!(
        said.contains("userns-closed"),
        "an app made a user namespace (all capabilities in it): {said}"
    );
}

/// `rm` removes whatever tree the app left in its upper directory: a
/// directory nested deeper than the descriptors (or stack) of a recursive
/// removal must not leave an app that can never be removed.
#[test]
fn rm_removes_whatever_tree_an_app_leaves() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = image_with_modes(env.root(), "plain", &[]);
    // Deeper than this process's descriptor limit (rrun inherits it).
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024));
    let depth = (soft + 500).min(70_000);
    let script = format!(
        "cd /tmp; mkdir a; i=0; while [ $i -lt {depth} ]; do mkdir t && mv a t/a && mv t a || break; \
         i=$((i+1)); done; echo depth=$i; sleep 1000"
    );
    env.app(&[
        "run",
        "-d",
        "--name",
        "deep",
        img.to_str().unwrap(),
        "sh",
        "-c",
        &script,
    ])
    .ok();
    poll(Duration::from_secs(120), || {
        env.app(&["logs", "deep"])
            .stdout
            .contains("depth=")
            .then_some(())
    })
    .expect("the app built its tree");
    let out = run_timeout(env.cmd(&["rm", "-f", "deep"]), Duration::from_secs(120));
    let left = env.root().join("apps/deep");
    if left.exists() {
        // GNU rm walks any depth; the temp dir's own removal would not.
        sh(&format!("rm -rf {}", left.display()));
    }
    assert!(
        out.success() && !left.exists(),
        "rm left an app the app made unremovable: {out}"
    );
}

// ---------------------------------------------------------------------------
// (d) a compose file from an untrusted repository
// ---------------------------------------------------------------------------

/// Reading a compose file (`config`, and so `up` and `unit`) costs memory
/// and time in proportion to the file, whatever its aliases and mappings
/// do: a big scalar aliased many times is few nodes but many bytes (here
/// 1 MiB x 100), and a mapping with many keys must not be checked for
/// duplicates key by key (here 300 000 keys, quadratic: minutes).
#[test]
fn compose_files_cannot_exhaust_memory_or_cpu() {
    let env = Env::new();
    let dir = env.root().join("proj");
    fs::create_dir_all(&dir).unwrap();
    let mut bomb = format!("x-big: &b \"{}\"\nx-many:\n", "x".repeat(1 << 20));
    for _ in 0..100 {
        bomb.push_str("  - *b\n");
    }
    bomb.push_str("services:\n  a:\n    image: /nonexistent\n");
    fs::write(dir.join("bytes.yaml"), bomb).unwrap();
    let out = env.app(&["compose", "-f", &s(&dir.join("bytes.yaml")), "config"]);
    assert!(
        !out.success() && out.stderr.contains("MiB"),
        "a 1 MiB file expanding to 100 MiB was read whole: {out}"
    );

    let mut keys = String::from("x-keys:\n");
    for i in 0..300_000 {
        keys.push_str(&format!("  k{i}: 1\n"));
    }
    keys.push_str("services:\n  a:\n    image: /nonexistent\n");
    fs::write(dir.join("keys.yaml"), keys).unwrap();
    // env.app's own timeout (90 s) is the bound; linear takes about a second.
    let out = env.app(&["compose", "-f", &s(&dir.join("keys.yaml")), "config"]);
    assert!(out.success(), "{out}");

    // A file the compose file names is read bounded: /dev/zero never ends
    // (under a 4 GiB address-space limit, so a failure here cannot take
    // the host's memory).
    fs::write(
        dir.join("zero.yaml"),
        "services:\n  a:\n    image: /nonexistent\n    env_file: /dev/zero\n",
    )
    .unwrap();
    let out = sh(&format!(
        "ulimit -v 4000000; {} app --app-root {} compose -f {} config",
        rrun_bin().display(),
        env.root().display(),
        dir.join("zero.yaml").display()
    ));
    assert!(
        !out.success() && out.stderr.contains("MiB"),
        "an endless env file was read on: {out}"
    );

    // Interpolation: a 1 MiB variable from .env used 200 times in one
    // value (a 1 MiB .env and a 1 KiB file make 200 MiB).
    let interp = dir.join("interp");
    fs::create_dir_all(&interp).unwrap();
    fs::write(interp.join(".env"), format!("A={}\n", "x".repeat(1 << 20))).unwrap();
    fs::write(
        interp.join("compose.yaml"),
        format!(
            "services:\n  a:\n    image: /nonexistent\n    environment:\n      X: \"{}\"\n",
            "$A".repeat(200)
        ),
    )
    .unwrap();
    let out = sh(&format!(
        "ulimit -v 4000000; {} app --app-root {} compose -f {} config",
        rrun_bin().display(),
        env.root().display(),
        interp.join("compose.yaml").display()
    ));
    assert!(
        !out.success() && out.stderr.contains("MiB"),
        "interpolation made a value of 200 MiB: {out}"
    );
}

/// `down -v` removes the volumes and networks its project made and no
/// other: a file may name any volume or network (`name:`), and one
/// project's `P_V` can be another's (`a` + `b_c` and `a_b` + `c` are both
/// `a_b_c`).
#[test]
fn compose_down_removes_only_its_own_volumes_and_networks() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = image(env.root(), "img", &[]);
    let dir = env.root().join("proj");
    fs::create_dir_all(&dir).unwrap();
    // Another app's data, in a volume no app uses at the moment.
    let foreign = env.root().join("volumes/pgdata");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("db"), "precious").unwrap();
    fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  a:\n    image: {}\n    command: [\"sleep\", \"1000\"]\n    volumes:\n      - data:/data\n\
             volumes:\n  data: {{}}\n  cache:\n    name: pgdata\n\
             networks:\n  other:\n    name: rt20handmade\n",
            img.display()
        ),
    )
    .unwrap();
    let file = s(&dir.join("compose.yaml"));
    let compose = |args: &[&str]| {
        let mut a = vec!["compose", "-f", file.as_str(), "-p", "rt20vol"];
        a.extend_from_slice(args);
        env.app(&a)
    };
    // A network made by hand, used by no app at the moment.
    env.app(&["network", "create", "rt20handmade"]).ok();
    compose(&["up", "-d"]).ok();
    let own = env.root().join("volumes/rt20vol_data");
    assert!(own.is_dir(), "up made the project's volume");
    let out = compose(&["down", "-v"]);
    out.ok();
    assert!(
        !own.exists(),
        "down -v left the project's own volume: {out}"
    );
    assert!(
        foreign.join("db").exists(),
        "down -v removed a volume the project did not make: {out}"
    );
    let nets = env.app(&["network", "ls"]);
    assert!(
        !nets.stdout.contains("rt20vol_default"),
        "down left the project's network: {nets}"
    );
    assert!(
        nets.stdout.contains("rt20handmade"),
        "down removed a network the project did not make: {out}"
    );
    env.app(&["network", "rm", "rt20handmade"]).ok();
}
