//! The harness of the `rrun app` tests (tests/app*.rs): one app root per
//! test whose apps, networks and run directory go when it is dropped,
//! images made from the test rootfs, and what an app can leave on the host.

use super::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// One app root for one test; everything in it removed on drop.
pub struct Env {
    dir: tempfile::TempDir,
    // Declared last: released after the env's apps are gone (Drop).
    _guard: Guard,
}

#[allow(dead_code)] // held only for its lifetime
pub enum Guard {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Exclusive(std::sync::RwLockWriteGuard<'static, ()>),
}

/// Tests that compare the host's whole link and firewall tables take the
/// write side: no other app test changes them meanwhile.
static HOST_TABLES: std::sync::RwLock<()> = std::sync::RwLock::new(());

impl Env {
    /// For a test that only reads its own apps.
    pub fn new() -> Env {
        Env::with_guard(Guard::Shared(
            HOST_TABLES.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }

    /// For a test that compares the host's tables before and after.
    pub fn exclusive() -> Env {
        Env::with_guard(Guard::Exclusive(
            HOST_TABLES.write().unwrap_or_else(|e| e.into_inner()),
        ))
    }

    pub fn with_guard(guard: Guard) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-app-")
            .tempdir()
            .expect("tempdir");
        Env { dir, _guard: guard }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// /run/rrun-app-<first 4 bytes of sha256(root), hex>.
    pub fn run_dir(&self) -> PathBuf {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(self.root().as_os_str().as_encoded_bytes());
        PathBuf::from(format!(
            "/run/rrun-app-{:02x}{:02x}{:02x}{:02x}",
            d[0], d[1], d[2], d[3]
        ))
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rrun_bin());
        c.arg("app").arg("--app-root").arg(self.root()).args(args);
        c
    }

    #[track_caller]
    pub fn app(&self, args: &[&str]) -> Output {
        run_timeout(self.cmd(args), Duration::from_secs(90))
    }

    pub fn inspect(&self, name: &str) -> Value {
        let out = self.app(&["inspect", name]);
        out.ok();
        let v: Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
        v[0].clone()
    }

    pub fn live(&self, name: &str) -> Value {
        self.inspect(name)["live"].clone()
    }

    /// The runtime's state root of this env's containers.
    pub fn runtime_root(&self, name: &str) -> PathBuf {
        PathBuf::from(self.inspect(name)["paths"]["runtimeRoot"].as_str().unwrap())
    }

    /// Runs a command in the app's container (the runtime's exec).
    pub fn exec(&self, name: &str, args: &[&str]) -> Output {
        let mut c = Command::new(rrun_bin());
        c.arg("--root")
            .arg(self.runtime_root(name))
            .arg("exec")
            .arg(name)
            .args(args);
        run_timeout(c, TIMEOUT)
    }

    pub fn names(&self) -> Vec<String> {
        let out = self.app(&["ls", "--all", "--format", "json"]);
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        poll(Duration::from_secs(30), || {
            let out = self.app(&["inspect", name]);
            let v: Value = serde_json::from_str(&out.stdout).ok()?;
            let l = v[0]["live"].clone();
            (l["state"] == state).then_some(l)
        })
        .unwrap_or_else(|| panic!("app {name} never got {state}: {}", self.live(name)))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let names = self.names();
        if !names.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(names.iter().map(String::as_str));
            let _ = self.app(&args);
        }
        let out = self.app(&["network", "ls", "--format", "json"]);
        if let Ok(Value::Array(nets)) = serde_json::from_str::<Value>(&out.stdout) {
            for n in nets {
                if let Some(n) = n["name"].as_str() {
                    let _ = self.app(&["network", "rm", n]);
                }
            }
        }
        // The run directory of this root (named as src/app/paths.rs names
        // it); a bind-mounted netns left in it would make this fail. Once
        // no process of this root is left (a monitor on its way out may
        // still touch it).
        let root = s(self.root());
        let busy = || {
            fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    fs::read(e.path().join("cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(&root))
                        .unwrap_or(false)
                })
        };
        poll(Duration::from_secs(15), || (!busy()).then_some(()));
        let _ = fs::remove_dir_all(self.run_dir());
    }
}

/// A rootfs tarball image: the test busybox rootfs plus `extra` files.
pub fn image(dir: &Path, name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let extra: Vec<(&str, &[u8], u32)> = extra
        .iter()
        .map(|(p, c)| (*p, c.as_bytes(), 0o644))
        .collect();
    image_with_modes(dir, name, &extra)
}

/// A rootfs tarball image: the test rootfs plus `extra` (path, content,
/// mode) files.
pub fn image_with_modes(dir: &Path, name: &str, extra: &[(&str, &[u8], u32)]) -> PathBuf {
    let tar = dir.join(format!("{name}.tar"));
    let stage = dir.join(format!("{name}.extra"));
    fs::create_dir_all(&stage).unwrap();
    for (p, content, mode) in extra {
        let f = stage.join(p.trim_start_matches('/'));
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, content).unwrap();
        set_mode(&f, *mode);
    }
    sh(&format!(
        "tar -C {} -cf {} . && tar -C {} -rf {} .",
        rootfs().display(),
        tar.display(),
        stage.display(),
        tar.display()
    ))
    .ok();
    tar
}

/// The shared test image (busybox with a web page): built once into
/// target/app-test-image (as the test rootfs is), again when the rootfs
/// was rebuilt; test binaries running side by side serialise on a lock.
pub fn web_image() -> PathBuf {
    static IMG: OnceLock<PathBuf> = OnceLock::new();
    IMG.get_or_init(|| {
        let d = target_dir().join("app-test-image");
        let tar = d.join("web.tar");
        let done = d.join(".done");
        // The rootfs's own marker: a rebuilt rootfs rebuilds the image.
        let stamp = fs::read_to_string(rootfs().join(".done")).unwrap_or_default();
        let is_done = || fs::read_to_string(&done).ok().as_deref() == Some(stamp.as_str());
        if !is_done() {
            fs::create_dir_all(&d).unwrap();
            let lock = fs::File::create(target_dir().join("app-test-image.lock")).unwrap();
            lock.lock().expect("lock app-test-image.lock");
            if !is_done() {
                let _ = fs::remove_dir_all(d.join("web.extra"));
                let built = image(
                    &d,
                    "web",
                    &[
                        ("/www/index.html", "hello from rrun app\n"),
                        ("/ok", "ok\n"),
                    ],
                );
                assert_eq!(built, tar);
                fs::write(&done, &stamp).unwrap();
            }
            lock.unlock().ok();
        }
        tar
    })
    .clone()
}

/// A TCP port free on the host right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn http_get(url: &str) -> Option<String> {
    let out = sh(&format!("curl -sf -m 2 {url}"));
    (out.success() && !out.stdout.is_empty()).then(|| out.stdout.clone())
}

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// What an app can leave on the host, as comparable sets.
#[derive(Debug, PartialEq)]
pub struct HostTraces {
    pub links: BTreeSet<String>,
    pub iptables: BTreeSet<String>,
    pub mounts: BTreeSet<String>,
    pub netns: BTreeSet<String>,
    pub nft: BTreeSet<String>,
}

/// What this env can leave on the host: its bridges and the veths on
/// them, firewall rules naming its containers or its subnets, mounts under
/// its root, netns files in its run directory. (Other users of the host
/// may change the rest of the tables meanwhile.)
pub fn traces(env: &Env) -> HostTraces {
    let set =
        |cmd: &str| -> BTreeSet<String> { sh(cmd).stdout.lines().map(|l| l.to_string()).collect() };
    let nets: Value = serde_json::from_str(&env.app(&["network", "ls", "--format", "json"]).stdout)
        .unwrap_or(Value::Null);
    let mut words = vec![
        env.run_dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("rrun-app")
            .to_string(),
    ];
    let mut links = BTreeSet::new();
    for n in nets.as_array().into_iter().flatten() {
        if let Some(subnet) = n["subnet"].as_str() {
            // 10.88.3.0/24 -> "10.88.3."
            let prefix = subnet
                .rsplit_once('.')
                .map(|(p, _)| format!("{p}."))
                .unwrap_or_default();
            words.push(prefix);
        }
        if let Some(br) = n["bridge"].as_str() {
            links.extend(set(&format!(
                "ip -o link show {br} 2>/dev/null | awk -F': ' '{{print $2}}'; \
                 ip -o link show master {br} 2>/dev/null | awk -F': ' '{{print $2}}' | cut -d@ -f1"
            )));
        }
    }
    let ours = |l: &String| {
        words
            .iter()
            .any(|w| !w.is_empty() && l.contains(w.as_str()))
    };
    HostTraces {
        links,
        iptables: set("iptables-save 2>/dev/null; iptables-save -t nat 2>/dev/null")
            .into_iter()
            .filter(|l| !l.starts_with('#') && !l.starts_with(':'))
            .filter(ours)
            .collect(),
        mounts: fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .map(String::from)
            .filter(|l| l.contains(&s(env.root())) || l.contains(&s(&env.run_dir())))
            .collect(),
        netns: set(&format!("ls {}/netns 2>/dev/null", s(&env.run_dir()))),
        // The MAC spoof check's per-app chains name the container.
        nft: set("nft list ruleset 2>/dev/null")
            .into_iter()
            .filter(ours)
            .collect(),
    }
}

pub fn ensure_root() -> bool {
    if !is_root() {
        skip("needs root");
        return false;
    }
    true
}

/// A fake systemd's notify socket ($NOTIFY_SOCKET for `--sd-notify`):
/// every datagram received, in order; the fds sent with one are closed at
/// once, which is how systemd acknowledges a barrier.
pub struct FakeSystemd {
    pub path: PathBuf,
    rx: std::sync::mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl FakeSystemd {
    pub fn new() -> FakeSystemd {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            loop {
                let mut buf = [0u8; 4096];
                let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
                let mut iov = [std::io::IoSliceMut::new(&mut buf)];
                let Ok(msg) = nix::sys::socket::recvmsg::<()>(
                    sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
                ) else {
                    return;
                };
                for c in msg.cmsgs().into_iter().flatten() {
                    if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                        for fd in fds {
                            let _ = nix::unistd::close(fd);
                        }
                    }
                }
                let n = msg.bytes;
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        FakeSystemd {
            path,
            rx,
            _dir: dir,
        }
    }

    /// The messages received since the last call.
    pub fn messages(&self) -> Vec<String> {
        self.rx.try_iter().collect()
    }
}
