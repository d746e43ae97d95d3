//! Apps' networks, through the CNI plugins (cni.rs drives them).
//!
//! - A network is a conflist in <root>/networks/<name>.conflist: a bridge
//!   (host-local IPAM, the gateway on the bridge, masquerade), portmap
//!   (published ports, reachable from the host's own localhost too) and
//!   firewall (so forwarding works where the FORWARD policy is DROP).
//!   "rrun0" is the default one, created on first use.
//! - Subnets are chosen (or checked, when given) against the host's routes,
//!   this root's networks and the subnets claimed by every other rrun app
//!   root on the host (<run>/subnets/<net>, under one host-wide lock).
//! - An app's attachment is persisted in apps/<app>/network.json BEFORE any
//!   side effect and the CNI result after each plugin, so `detach` works
//!   from the files alone after a crash (kill -9 of everything): DEL with
//!   the cached result, then the netns, then the records.
//! - Each app gets apps/<app>/hosts (itself and every app of its network:
//!   names resolve between apps) and resolv.conf (the host's, loopback
//!   nameservers dropped as Docker does); they are bind-mounted into the
//!   container, so they are rewritten in place, never renamed over.
//!
//! - Locks (flock, <run>/locks): "networks" (create/remove), "net-<name>"
//!   (where a network's apps meet: ADD, the records, the hosts files, the
//!   bridge), "app-<app>.net" (one app's attach/detach), "ports" (a host
//!   port's check and claim); taken in that order, never the other way.
//!   DEL runs outside the network's lock: the plugins lock what they share
//!   (host-local its leases, iptables the xtables lock), so apps leave in
//!   parallel. ADD stays serialized per network: portmap and bridge create
//!   their shared chains and the bridge check-then-create.
//! - The network namespace is made by unshare(CLONE_NEWNET) in a thread of
//!   its own, held by a bind mount of /proc/thread-self/ns/net on
//!   <run>/netns/<app>; the process's own namespace never changes.
//!
//! Never touches an interface, rule or namespace it did not create: the
//! plugins' DEL removes what their ADD made; the bridge is deleted when the
//! last app of its network leaves. The plugins' shared top-level chains
//! (CNI-HOSTPORT-*, CNI-FORWARD, CNI-ADMIN) stay, empty, as every CNI
//! runtime leaves them; the bridge plugin turns net.ipv4.ip_forward on.
// Some of the API (check, is_live, check_plugins, check_ports_except) is
// for callers that may not use it yet.
#![allow(dead_code)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::cni::{self, CniError, RuntimeConf};
use super::paths::Paths;

pub const DEFAULT_NETWORK: &str = "rrun0";
/// The container's interface on a bridge network.
const IFNAME: &str = "eth0";
/// Host-wide lock for subnet choice across app roots.
/// Host-wide (every app root): not in the world-writable /run/lock, where
/// any local user could plant it or hold it.
const SUBNET_LOCK: &str = "/run/rrun-app-subnets.lock";
/// The run directories of every app root are /run/rrun-app<tag>.
const RUN_PARENT: &str = "/run";
const RUN_PREFIX: &str = "rrun-app";
/// Plugins a bridge network uses, in order (loopback runs first, alone).
const BRIDGE_PLUGINS: &[&str] = &["bridge", "host-local", "portmap", "firewall", "loopback"];

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("invalid name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]{{0,62}}")]
    BadName(String),
    #[error("invalid port mapping {spec:?}: {why}")]
    BadPort { spec: String, why: String },
    #[error("port {0} is already in use on the host")]
    PortInUse(String),
    #[error("port {port} is already published by app {app:?}")]
    PortTaken { port: String, app: String },
    #[error("cannot publish port {0}: the host has no such address")]
    PortAddr(String),
    #[error("invalid network mode {0:?}: use bridge, host, none or a network name")]
    BadMode(String),
    #[error(
        "ports cannot be published with --network {0} (the app has no network of its own to map into)"
    )]
    PortsWithoutBridge(String),
    #[error("invalid subnet {spec:?}: {why}")]
    BadSubnet { spec: String, why: String },
    #[error("subnet {subnet} overlaps {what}")]
    SubnetOverlap { subnet: String, what: String },
    #[error("no free subnet left in 10.88.0.0/16-10.99.0.0/16")]
    NoFreeSubnet,
    #[error("{0:?} is a --network mode, not a name a network can have")]
    Reserved(String),
    #[error("network {0:?} already exists")]
    Exists(String),
    #[error("no such network: {0:?}")]
    NoSuchNetwork(String),
    #[error("network {name:?} is in use by {}", apps.join(", "))]
    InUse { name: String, apps: Vec<String> },
    #[error("network {name:?}: bad definition {path}: {why}")]
    BadConflist {
        name: String,
        path: PathBuf,
        why: String,
    },
    #[error(transparent)]
    Cni(#[from] CniError),
    #[error("network namespace {path}: {what}: {errno}")]
    Netns {
        path: PathBuf,
        what: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("deleting bridge {bridge}: {why}")]
    Bridge { bridge: String, why: String },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> NetError + 'a {
    move |source| NetError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// App and network names: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}.
pub fn validate_name(name: &str) -> Result<(), NetError> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetError::BadName(name.to_string()))
    }
}

// ---------------------------------------------------------------- ports

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.proto
        )
    }
}

impl PortMap {
    /// Whether two mappings claim the same host socket.
    fn clashes(&self, o: &PortMap) -> bool {
        self.proto == o.proto
            && self.host_port == o.host_port
            && (self.host_ip.is_none() || o.host_ip.is_none() || self.host_ip == o.host_ip)
    }
}

/// Refuses ports another app of this root publishes, and IPv6 host
/// addresses (the networks are IPv4: nothing would answer there).
fn taken_by_others(paths: &Paths, except: Option<&str>, ports: &[PortMap]) -> Result<(), NetError> {
    if let Some(p) = ports
        .iter()
        .find(|p| p.host_ip.is_some_and(|ip| ip.is_ipv6()))
    {
        return Err(NetError::BadPort {
            spec: p.to_string(),
            why: "IPv6 host addresses are not supported (networks are IPv4)".into(),
        });
    }
    for (app, att) in attachments(paths) {
        if Some(app.as_str()) == except {
            continue;
        }
        for p in ports {
            if att.ports.iter().any(|q| q.clashes(p)) {
                return Err(NetError::PortTaken {
                    port: p.to_string(),
                    app,
                });
            }
        }
    }
    Ok(())
}

/// `[IP:]HOST:CTR[/tcp|udp]` (an IPv6 address in brackets).
pub fn parse_port(s: &str) -> Result<PortMap, NetError> {
    let bad = |why: &str| NetError::BadPort {
        spec: s.to_string(),
        why: why.to_string(),
    };
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(bad(&format!("unknown protocol {p:?} (tcp or udp)"))),
        None => (s, Proto::Tcp),
    };
    let (ip, ports) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| bad("expected ':' after the address"))?;
        (Some(ip), after)
    } else {
        match rest.matches(':').count() {
            1 => (None, rest),
            2 => {
                let (ip, p) = rest.split_once(':').expect("two colons: split succeeds");
                (Some(ip), p)
            }
            _ => return Err(bad("expected [IP:]HOST:CONTAINER[/tcp|udp]")),
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|_| bad(&format!("{ip:?} is not an IP address")))?,
        ),
    };
    let (h, c) = ports
        .split_once(':')
        .ok_or_else(|| bad("expected [IP:]HOST:CONTAINER[/tcp|udp]"))?;
    let port = |p: &str, what: &str| -> Result<u16, NetError> {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Ok(_) => Err(bad(&format!("{what} port {p} out of range 1-65535"))),
            Err(_) => Err(bad(&format!("{what} port {p:?} is not a number"))),
        }
    };
    Ok(PortMap {
        host_ip,
        host_port: port(h, "host")?,
        container_port: port(c, "container")?,
        proto,
    })
}

/// Refuses ports that clash with each other, with another app of this root,
/// or with a socket bound on the host (tested by binding it).
pub fn check_ports(paths: &Paths, ports: &[PortMap]) -> Result<(), NetError> {
    check_ports_except(paths, None, ports)
}

/// check_ports, not counting the ports app `except` publishes itself (an
/// upgrade or recreate of that app keeps them).
pub fn check_ports_except(
    paths: &Paths,
    except: Option<&str>,
    ports: &[PortMap],
) -> Result<(), NetError> {
    for (i, p) in ports.iter().enumerate() {
        if ports[..i].iter().any(|q| q.clashes(p)) {
            return Err(NetError::BadPort {
                spec: p.to_string(),
                why: "published twice".into(),
            });
        }
    }
    taken_by_others(paths, except, ports)?;
    for p in ports {
        let ip = p.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let r = match p.proto {
            Proto::Tcp => TcpListener::bind((ip, p.host_port)).map(drop),
            Proto::Udp => UdpSocket::bind((ip, p.host_port)).map(drop),
        };
        match r.map_err(|e| e.raw_os_error()) {
            Err(Some(libc::EADDRINUSE)) => return Err(NetError::PortInUse(p.to_string())),
            Err(Some(libc::EADDRNOTAVAIL)) => return Err(NetError::PortAddr(p.to_string())),
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- modes

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Bridge(String),
    Host,
    None,
}

/// bridge (the default network "rrun0"), host, none, or a network's name.
pub fn parse_mode(s: &str) -> Result<Mode, NetError> {
    match s {
        "bridge" | "" => Ok(Mode::Bridge(DEFAULT_NETWORK.into())),
        "host" => Ok(Mode::Host),
        "none" => Ok(Mode::None),
        name => {
            validate_name(name).map_err(|_| NetError::BadMode(s.to_string()))?;
            Ok(Mode::Bridge(name.into()))
        }
    }
}

// ---------------------------------------------------------------- subnets

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: u32,
    prefix: u8,
}

impl Cidr {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }
    fn overlaps(self, o: Cidr) -> bool {
        let m = self.mask() & o.mask();
        self.addr & m == o.addr & m
    }
    fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr + 1)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.prefix)
    }
}

fn parse_cidr(s: &str) -> Result<Cidr, NetError> {
    let bad = |why: &str| NetError::BadSubnet {
        spec: s.to_string(),
        why: why.to_string(),
    };
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| bad("expected an IPv4 A.B.C.D/N"))?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad("expected an IPv4 A.B.C.D/N"))?;
    let prefix: u8 = p
        .parse()
        .map_err(|_| bad("the prefix length is not a number"))?;
    if !(8..=29).contains(&prefix) {
        return Err(bad("the prefix length must be 8-29"));
    }
    let c = Cidr {
        addr: u32::from(addr),
        prefix,
    };
    if c.addr & !c.mask() != 0 {
        return Err(bad(&format!(
            "host bits set (did you mean {}?)",
            Cidr {
                addr: c.addr & c.mask(),
                prefix
            }
        )));
    }
    if addr.is_loopback() || addr.is_multicast() || addr.is_unspecified() || addr.is_link_local() {
        return Err(bad("not a usable unicast range"));
    }
    Ok(c)
}

/// The host's IPv4 routes (default route excluded), from /proc/net/route.
fn host_routes() -> Vec<(Cidr, String)> {
    let Ok(text) = fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        // Destination and Mask are the kernel's u32 in host (little) endian.
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        let (dst, mask) = (u32::from_be(dst), u32::from_be(mask));
        if mask == 0 {
            continue;
        }
        out.push((
            Cidr {
                addr: dst,
                prefix: mask.count_ones() as u8,
            },
            f[0].to_string(),
        ));
    }
    out
}

/// Subnets claimed by every app root's networks on this host (the run
/// directories' subnets/<net> files), but `except` of this root.
fn claimed_subnets(paths: &Paths, except: &str) -> Vec<(Cidr, String)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(RUN_PARENT) else {
        return out;
    };
    for e in rd.flatten() {
        let n = e.file_name();
        if !n.to_string_lossy().starts_with(RUN_PREFIX) {
            continue;
        }
        let Ok(claims) = fs::read_dir(e.path().join("subnets")) else {
            continue;
        };
        for c in claims.flatten() {
            let net = c.file_name().to_string_lossy().into_owned();
            if e.path() == paths.run && net == except {
                continue;
            }
            let Ok(text) = fs::read_to_string(c.path()) else {
                continue;
            };
            let mut lines = text.lines();
            let Ok(cidr) = parse_cidr(lines.next().unwrap_or("").trim()) else {
                continue;
            };
            // A claim whose network definition is gone (its app root
            // deleted without `network rm`) is stale: ignored.
            let root = lines.next().map(PathBuf::from);
            if let Some(root) = &root
                && !root
                    .join("networks")
                    .join(format!("{net}.conflist"))
                    .exists()
            {
                continue;
            }
            let of = root.map_or_else(
                || e.path().display().to_string(),
                |r| r.display().to_string(),
            );
            out.push((cidr, format!("network {net:?} of {of}")));
        }
    }
    out
}

/// What a new subnet must not overlap, with a name for the error.
fn taken_subnets(paths: &Paths, except: &str) -> Vec<(Cidr, String)> {
    let mut out: Vec<(Cidr, String)> = host_routes()
        .into_iter()
        .map(|(c, dev)| (c, format!("the host's route {c} on {dev}")))
        .collect();
    for (n, def) in definitions(paths) {
        if n != except
            && let Ok(c) = parse_cidr(&def.subnet)
        {
            out.push((c, format!("network {n:?}")));
        }
    }
    out.extend(claimed_subnets(paths, except));
    out
}

fn pick_subnet(taken: &[(Cidr, String)]) -> Option<Cidr> {
    (88u32..=99)
        .flat_map(|b| {
            (0u32..=255).map(move |c| Cidr {
                addr: (10 << 24) | (b << 16) | (c << 8),
                prefix: 24,
            })
        })
        .find(|c| !taken.iter().any(|(t, _)| t.overlaps(*c)))
}

fn subnet_lock() -> Result<Flock<File>, NetError> {
    let p = Path::new(SUBNET_LOCK);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    lock_file(p)
}

fn claim_subnet(paths: &Paths, name: &str, subnet: &str) -> Result<(), NetError> {
    let dir = paths.run.join("subnets");
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let p = dir.join(name);
    // The subnet, then the app root whose network it is (so a claim whose
    // root is gone can be told stale).
    fs::write(&p, format!("{subnet}\n{}\n", paths.root.display())).map_err(io("writing", &p))
}

// ---------------------------------------------------------------- networks

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    pub subnet: String,
    pub gateway: String,
    pub bridge: String,
    pub apps: Vec<String>,
}

struct Definition {
    subnet: String,
    gateway: String,
    bridge: String,
}

fn conflist_path(paths: &Paths, name: &str) -> PathBuf {
    paths.networks().join(format!("{name}.conflist"))
}

/// The bridge of a network: "rrun0" for the default root's default network,
/// else "rrbr" + 8 hex digits of (root, name) — host-wide unique and under
/// the kernel's 15 characters.
fn bridge_name(paths: &Paths, name: &str) -> String {
    if paths.tag.is_empty() && name == DEFAULT_NETWORK {
        return DEFAULT_NETWORK.to_string();
    }
    let mut h = Sha256::new();
    h.update(paths.root.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    let d = h.finalize();
    format!("rrbr{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
}

/// Whether the nft program is there (the bridge plugin's MAC spoof check
/// runs it).
fn have_nft() -> bool {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .iter()
        .any(|p| Path::new(p).is_file())
}

/// The conflist of a network (the IPAM dataDir is filled in at use: it lives
/// in the run directory).
fn conflist(name: &str, bridge: &str, subnet: Cidr) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                // Frames from an app must carry its own MAC (nftables
                // rules per veth, removed at DEL): one app cannot pose as
                // another on the shared bridge at layer 2. The plugin
                // needs the nft program for it.
                "macspoofchk": have_nft(),
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet.to_string(), "gateway": subnet.gateway().to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "firewall"}
        ]
    })
}

fn read_conflist(paths: &Paths, name: &str) -> Result<Value, NetError> {
    let p = conflist_path(paths, name);
    let text = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NetError::NoSuchNetwork(name.into()));
        }
        Err(e) => return Err(io("reading", &p)(e)),
    };
    let bad = |why: String| NetError::BadConflist {
        name: name.into(),
        path: p.clone(),
        why,
    };
    let mut v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    // host-local's leases live in the run directory: forgotten at reboot,
    // with the namespaces they were for.
    let data_dir = paths.cni_state().join("ipam");
    if let Some(ipam) = v
        .pointer_mut("/plugins/0/ipam")
        .and_then(Value::as_object_mut)
    {
        ipam.insert("dataDir".into(), json!(data_dir));
    }
    Ok(v)
}

fn definition(v: &Value) -> Option<Definition> {
    let b = v.pointer("/plugins/0")?;
    let r = b.pointer("/ipam/ranges/0/0")?;
    Some(Definition {
        subnet: r.get("subnet")?.as_str()?.to_string(),
        gateway: r.get("gateway")?.as_str()?.to_string(),
        bridge: b.get("bridge")?.as_str()?.to_string(),
    })
}

/// Every network defined in this root, by name.
fn definitions(paths: &Paths) -> Vec<(String, Definition)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(paths.networks()) else {
        return out;
    };
    for e in rd.flatten() {
        let f = e.file_name().to_string_lossy().into_owned();
        let Some(name) = f.strip_suffix(".conflist") else {
            continue;
        };
        if let Ok(v) = read_conflist(paths, name)
            && let Some(d) = definition(&v)
        {
            out.push((name.to_string(), d));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn info(paths: &Paths, name: &str, d: Definition) -> NetworkInfo {
    let apps = attachments(paths)
        .into_iter()
        .filter(|(_, a)| a.network.as_deref() == Some(name))
        .map(|(n, _)| n)
        .collect();
    NetworkInfo {
        name: name.to_string(),
        subnet: d.subnet,
        gateway: d.gateway,
        bridge: d.bridge,
        apps,
    }
}

fn lock_file(p: &Path) -> Result<Flock<File>, NetError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // 0600, no symlink followed: flock needs only a read fd, and another
    // local user holding a lock would wedge every attach and create.
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
        .map_err(io("opening lock", p))?;
    // A lock file made before with a laxer mode.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io("opening lock", p))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| NetError::Io {
        what: "locking",
        path: p.to_path_buf(),
        source: e.into(),
    })
}

fn lock(paths: &Paths, what: &str) -> Result<Flock<File>, NetError> {
    let d = paths.locks();
    fs::create_dir_all(&d).map_err(io("creating", &d))?;
    lock_file(&d.join(format!("{what}.lock")))
}

/// Creates network `name` (a bridge of its own) with `subnet`, or the first
/// free /24 from 10.88.0.0/16 on when none is given.
pub fn create(paths: &Paths, name: &str, subnet: Option<&str>) -> Result<NetworkInfo, NetError> {
    validate_name(name)?;
    if matches!(name, "bridge" | "host" | "none") {
        return Err(NetError::Reserved(name.into()));
    }
    let wanted = subnet.map(parse_cidr).transpose()?;
    let _root = lock(paths, "networks")?;
    let p = conflist_path(paths, name);
    if p.exists() {
        return Err(NetError::Exists(name.into()));
    }
    let _host = subnet_lock()?;
    let taken = taken_subnets(paths, name);
    let subnet = match wanted {
        Some(c) => {
            if let Some((_, what)) = taken.iter().find(|(t, _)| t.overlaps(c)) {
                return Err(NetError::SubnetOverlap {
                    subnet: c.to_string(),
                    what: what.clone(),
                });
            }
            c
        }
        None => pick_subnet(&taken).ok_or(NetError::NoFreeSubnet)?,
    };
    let bridge = bridge_name(paths, name);
    let v = conflist(name, &bridge, subnet);
    let dir = paths.networks();
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let tmp = dir.join(format!(".{name}.conflist.tmp"));
    let text = serde_json::to_string_pretty(&v).expect("a JSON value serializes");
    fs::write(&tmp, text + "\n").map_err(io("writing", &tmp))?;
    claim_subnet(paths, name, &subnet.to_string())?;
    if let Err(e) = fs::rename(&tmp, &p) {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(paths.run.join("subnets").join(name));
        return Err(io("writing", &p)(e));
    }
    Ok(NetworkInfo {
        name: name.into(),
        subnet: subnet.to_string(),
        gateway: subnet.gateway().to_string(),
        bridge,
        apps: Vec::new(),
    })
}

/// The default network, created on first use.
pub fn ensure_default(paths: &Paths) -> Result<NetworkInfo, NetError> {
    match get(paths, DEFAULT_NETWORK) {
        Err(NetError::NoSuchNetwork(_)) => match create(paths, DEFAULT_NETWORK, None) {
            Err(NetError::Exists(_)) => get(paths, DEFAULT_NETWORK),
            r => r,
        },
        r => r,
    }
}

/// One network's definition and apps.
pub fn get(paths: &Paths, name: &str) -> Result<NetworkInfo, NetError> {
    validate_name(name)?;
    let v = read_conflist(paths, name)?;
    let d = definition(&v).ok_or_else(|| NetError::BadConflist {
        name: name.into(),
        path: conflist_path(paths, name),
        why: "no bridge with a host-local range".into(),
    })?;
    Ok(info(paths, name, d))
}

pub fn list(paths: &Paths) -> Result<Vec<NetworkInfo>, NetError> {
    Ok(definitions(paths)
        .into_iter()
        .map(|(n, d)| info(paths, &n, d))
        .collect())
}

/// Removes a network no app uses: its definition, its bridge (if up), its
/// leases directory and its subnet claim.
pub fn remove(paths: &Paths, name: &str) -> Result<(), NetError> {
    validate_name(name)?;
    let _root = lock(paths, "networks")?;
    let _net = lock(paths, &format!("net-{name}"))?;
    let n = get(paths, name)?;
    if !n.apps.is_empty() {
        return Err(NetError::InUse {
            name: name.into(),
            apps: n.apps,
        });
    }
    delete_bridge(&n.bridge)?;
    let p = conflist_path(paths, name);
    fs::remove_file(&p).map_err(io("removing", &p))?;
    let _ = fs::remove_dir_all(paths.cni_state().join("ipam").join(name));
    let _ = fs::remove_file(paths.run.join("subnets").join(name));
    let _ = fs::remove_file(paths.locks().join(format!("net-{name}.lock")));
    // The compose project that made it, if one did (compose/project.rs): a
    // network made again by hand under this name is nobody's project's.
    let _ = fs::remove_file(paths.networks().join(format!(".{name}.project")));
    Ok(())
}

/// The rule that keeps apps away from the host's 127.0.0.0/8: portmap
/// turns on route_localnet on the bridge for `-p 127.0.0.1:...` (so the
/// host's own localhost reaches the app), which also lets any app on the
/// bridge (root with CAP_NET_RAW) send to services the host binds to
/// 127.0.0.1 (CVE-2020-8558's class). New connections from the bridge to
/// 127/8 are dropped; replies to the host's own connections (established)
/// pass.
fn localnet_rule(bridge: &str) -> Vec<String> {
    [
        "INPUT",
        "-i",
        bridge,
        "-d",
        "127.0.0.0/8",
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "RELATED,ESTABLISHED",
        "-m",
        "comment",
        "--comment",
        "rrun app: no localnet from apps",
        "-j",
        "DROP",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn iptables(op: &str, rule: &[String]) -> Result<bool, String> {
    let out = std::process::Command::new("iptables")
        .args(["-w", "-t", "filter", op])
        .args(rule)
        .output()
        .map_err(|e| format!("running iptables: {e}"))?;
    Ok(out.status.success())
}

/// Adds the localnet rule for `bridge` once (idempotent).
fn guard_localnet(bridge: &str) -> Result<(), NetError> {
    let rule = localnet_rule(bridge);
    let bad = |why: String| NetError::Bridge {
        bridge: bridge.into(),
        why,
    };
    if iptables("-C", &rule).map_err(bad)? {
        return Ok(());
    }
    if !iptables("-I", &rule).map_err(bad)? {
        return Err(bad(
            "iptables could not add the rule that keeps apps off the host's 127.0.0.0/8".into(),
        ));
    }
    Ok(())
}

fn delete_bridge(bridge: &str) -> Result<(), NetError> {
    // The localnet rule goes with the bridge (every copy, if a race added two).
    let rule = localnet_rule(bridge);
    while matches!(iptables("-D", &rule), Ok(true)) {}
    if !Path::new("/sys/class/net").join(bridge).exists() {
        return Ok(());
    }
    let out = std::process::Command::new("ip")
        .args(["link", "delete", "dev", bridge, "type", "bridge"])
        .output()
        .map_err(|e| NetError::Bridge {
            bridge: bridge.into(),
            why: format!("running ip: {e}"),
        })?;
    if !out.status.success() && Path::new("/sys/class/net").join(bridge).exists() {
        return Err(NetError::Bridge {
            bridge: bridge.into(),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- attachments

/// What an app's network is, and what DEL needs (persisted in
/// apps/<app>/network.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// "bridge", "host" or "none".
    pub mode: String,
    /// The network namespace to join (None: the host's).
    pub netns: Option<PathBuf>,
    pub network: Option<String>,
    pub ip: Option<IpAddr>,
    pub ports: Vec<PortMap>,
    /// CNI_CONTAINERID (host-wide unique: the root's tag and the app).
    #[serde(default)]
    pub cni_id: String,
}

fn record_path(paths: &Paths, app: &str) -> PathBuf {
    paths.app(app).join("network.json")
}
fn result_path(paths: &Paths, app: &str) -> PathBuf {
    paths
        .cni_state()
        .join("results")
        .join(format!("{app}.json"))
}
pub fn hosts_path(paths: &Paths, app: &str) -> PathBuf {
    paths.app(app).join("hosts")
}
pub fn resolv_path(paths: &Paths, app: &str) -> PathBuf {
    paths.app(app).join("resolv.conf")
}
fn netns_path(paths: &Paths, app: &str) -> PathBuf {
    paths.netns_dir().join(app)
}

/// The attachment of an app, if it has one.
pub fn attachment(paths: &Paths, app: &str) -> Option<Attachment> {
    let t = fs::read_to_string(record_path(paths, app)).ok()?;
    serde_json::from_str(&t).ok()
}

/// Whether an attachment still holds: its network namespace is mounted
/// (false after a reboot, or when something unmounted it). A stale one is
/// what `attach` replaces: call it again.
pub fn is_live(att: &Attachment) -> bool {
    match &att.netns {
        None => true,
        Some(p) => nix::sys::statfs::statfs(p.as_path())
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC),
    }
}

/// Every app of this root with an attachment.
fn attachments(paths: &Paths) -> Vec<(String, Attachment)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(paths.apps()) else {
        return out;
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(a) = attachment(paths, &n) {
            out.push((n, a));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write_atomic(p: &Path, data: &[u8]) -> Result<(), NetError> {
    let tmp = p.with_extension("tmp");
    fs::write(&tmp, data).map_err(io("writing", &tmp))?;
    fs::rename(&tmp, p).map_err(io("writing", p))
}

fn save_record(paths: &Paths, app: &str, a: &Attachment) -> Result<(), NetError> {
    let text = serde_json::to_vec_pretty(a).expect("an attachment serializes");
    write_atomic(&record_path(paths, app), &text)
}

/// Rewrites a file in place (same inode): it may be bind-mounted into a
/// running container, where a rename over it would not be seen. Written
/// over the old content, then cut to length (no truncate first): a reader
/// never finds it empty.
fn write_in_place(p: &Path, data: &str) -> Result<(), NetError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .map_err(io("writing", p))?;
    f.write_all(data.as_bytes()).map_err(io("writing", p))?;
    f.set_len(data.len() as u64).map_err(io("writing", p))
}

/// One app of a network as the hosts files list it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub ip: IpAddr,
    /// More names for it (a compose service's name).
    pub aliases: Vec<String>,
}

/// Whether `n` may stand in a hosts file as a name: what resolvers accept,
/// and nothing that could break the line (whitespace, '#').
fn host_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// The hosts file of `app`: localhost, then the app itself, then the other
/// apps of its network (sorted, so rewrites are stable), each with its
/// aliases; then the app's own extra NAME:IP entries (bad ones skipped:
/// settings are checked where they are made).
pub fn hosts_content(
    app: &str,
    own: Option<IpAddr>,
    peers: &[Member],
    extra_hosts: &[String],
) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let line = |s: &mut String, ip: String, name: &str, aliases: &[String]| {
        s.push_str(&ip);
        s.push('\t');
        s.push_str(name);
        for a in aliases.iter().filter(|a| host_name_ok(a) && *a != name) {
            s.push(' ');
            s.push_str(a);
        }
        s.push('\n');
    };
    let own_aliases = peers
        .iter()
        .find(|m| m.name == app)
        .map(|m| m.aliases.as_slice())
        .unwrap_or(&[]);
    match own {
        Some(ip) => line(&mut s, ip.to_string(), app, own_aliases),
        None => line(&mut s, "127.0.1.1".into(), app, &[]),
    }
    for m in peers.iter().filter(|m| m.name != app) {
        line(&mut s, m.ip.to_string(), &m.name, &m.aliases);
    }
    for e in extra_hosts {
        if let Some((name, ip)) = e.split_once(':')
            && host_name_ok(name)
            && let Ok(ip) = ip.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>()
        {
            line(&mut s, ip.to_string(), name, &[]);
        }
    }
    s
}

/// An app's aliases and extra hosts from its settings (app.json; read
/// here as plain JSON: this module depends on nothing but cni and paths).
/// None when they cannot be read: the hosts file still lists the app.
fn names_of(paths: &Paths, app: &str) -> (Vec<String>, Vec<String>) {
    #[derive(Deserialize, Default)]
    struct Names {
        #[serde(default)]
        aliases: Vec<String>,
        #[serde(default)]
        extra_hosts: Vec<String>,
    }
    let n: Names = fs::read(paths.app(app).join("app.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    (n.aliases, n.extra_hosts)
}

/// The resolv.conf an app on its own network gets: the host's, loopback
/// nameservers dropped (they are the host's, unreachable from the app's
/// namespace); when none is left, systemd-resolved's upstream list if
/// there is one, else public resolvers, as Docker does.
pub fn resolv_content(host: &str, upstream: Option<&str>) -> String {
    let is_loopback_ns = |l: &str| {
        let mut w = l.split_whitespace();
        w.next() == Some("nameserver")
            && w.next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|a| a.is_loopback())
    };
    let kept: Vec<&str> = host.lines().filter(|l| !is_loopback_ns(l)).collect();
    let has_ns = |ls: &[&str]| {
        ls.iter()
            .any(|l| l.split_whitespace().next() == Some("nameserver"))
    };
    if has_ns(&kept) {
        return kept.join("\n") + "\n";
    }
    if let Some(up) = upstream {
        let up: Vec<&str> = up.lines().filter(|l| !is_loopback_ns(l)).collect();
        if has_ns(&up) {
            return up.join("\n") + "\n";
        }
    }
    let mut s = kept.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s + "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
}

/// Writes every hosts file of a network's apps (each in place).
fn update_hosts(paths: &Paths, network: &str) -> Result<(), NetError> {
    let mut extras = Vec::new();
    let members: Vec<Member> = attachments(paths)
        .into_iter()
        .filter(|(_, a)| a.network.as_deref() == Some(network))
        .filter_map(|(n, a)| {
            let ip = a.ip?;
            let (aliases, extra) = names_of(paths, &n);
            extras.push(extra);
            Some(Member {
                name: n,
                ip,
                aliases,
            })
        })
        .collect();
    for (m, extra) in members.iter().zip(&extras) {
        let p = hosts_path(paths, &m.name);
        write_in_place(&p, &hosts_content(&m.name, Some(m.ip), &members, extra))?;
    }
    Ok(())
}

/// Creates <run>/netns/<app>: a new network namespace held by a bind mount.
/// The unshare happens in a thread of its own (a thread's network namespace
/// is its own), so the caller's stays the host's.
fn create_netns(p: &Path) -> Result<(), NetError> {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    File::create(p).map_err(io("creating", p))?;
    let target = p.to_path_buf();
    let r = std::thread::spawn(move || -> Result<(), (&'static str, nix::errno::Errno)> {
        use nix::mount::{MsFlags, mount};
        use nix::sched::{CloneFlags, unshare};
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| ("unshare", e))?;
        // No router advertisements: another app on the bridge (root with
        // CAP_NET_RAW) would otherwise set this app's IPv6 default route
        // and addresses, and see its traffic. Set before the plugin makes
        // eth0, which takes the namespace's default.
        for f in [
            "/proc/sys/net/ipv6/conf/default/accept_ra",
            "/proc/sys/net/ipv6/conf/all/accept_ra",
        ] {
            match fs::write(f, "0") {
                Ok(()) => {}
                // No IPv6 in this kernel: nothing to accept.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                    return Err(("turning off router advertisements", errno));
                }
            }
        }
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| ("bind mount", e))
    })
    .join()
    .unwrap_or(Err(("thread", nix::errno::Errno::EIO)));
    r.map_err(|(what, errno)| {
        let _ = fs::remove_file(p);
        NetError::Netns {
            path: p.to_path_buf(),
            what,
            errno,
        }
    })
}

/// Unmounts and removes a netns file; nothing there is fine.
fn remove_netns(p: &Path) -> Result<(), NetError> {
    use nix::mount::{MntFlags, umount2};
    if !p.exists() {
        return Ok(());
    }
    match umount2(p, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(errno) => {
            return Err(NetError::Netns {
                path: p.to_path_buf(),
                what: "unmount",
                errno,
            });
        }
    }
    match fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", p)(e)),
        _ => Ok(()),
    }
}

fn cni_id(paths: &Paths, app: &str) -> String {
    format!("rrun-app{}-{app}", paths.tag)
}

fn port_mappings(ports: &[PortMap]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| {
                let mut m = json!({"hostPort": p.host_port, "containerPort": p.container_port, "protocol": p.proto.to_string()});
                if let Some(ip) = p.host_ip {
                    m["hostIP"] = json!(ip.to_string());
                }
                m
            })
            .collect(),
    )
}

fn runtime_conf(id: &str, netns: Option<&Path>, ifname: &str, ports: &[PortMap]) -> RuntimeConf {
    let mut caps = Map::new();
    caps.insert("portMappings".into(), port_mappings(ports));
    RuntimeConf {
        container_id: id.to_string(),
        netns: netns.filter(|p| p.exists()).map(Path::to_path_buf),
        ifname: ifname.to_string(),
        capability_args: caps,
    }
}

fn loopback_list() -> Value {
    json!({"cniVersion": "1.0.0", "name": "rrun-lo", "plugins": [{"type": "loopback"}]})
}

fn first_ip(result: &Value) -> Option<IpAddr> {
    let a = result.pointer("/ips/0/address")?.as_str()?;
    a.split('/').next()?.parse().ok()
}

/// Checks that the CNI plugins `mode` needs are installed (call it before
/// any side effect of starting an app; attach does too): the error names
/// the missing plugin and where it was looked for.
pub fn check_plugins(mode: &Mode) -> Result<(), NetError> {
    let dirs = cni::plugin_dirs();
    let needed: &[&str] = match mode {
        Mode::Bridge(_) => BRIDGE_PLUGINS,
        Mode::None => &["loopback"],
        Mode::Host => &[],
    };
    for p in needed {
        cni::find_plugin(&dirs, p)?;
    }
    Ok(())
}

/// Gives `app` its network: see the module comment. On error nothing is
/// left (what was done is undone).
pub fn attach(
    paths: &Paths,
    app: &str,
    mode: &Mode,
    ports: &[PortMap],
) -> Result<Attachment, NetError> {
    validate_name(app)?;
    let dirs = cni::plugin_dirs();
    // The plugins are checked first: a missing one leaves nothing.
    check_plugins(mode)?;
    let net = match mode {
        Mode::Bridge(n) => {
            validate_name(n)?;
            if n == DEFAULT_NETWORK {
                ensure_default(paths)?;
            }
            Some(n.clone())
        }
        Mode::None | Mode::Host => None,
    };
    if !ports.is_empty() && !matches!(mode, Mode::Bridge(_)) {
        return Err(NetError::PortsWithoutBridge(
            if *mode == Mode::Host { "host" } else { "none" }.into(),
        ));
    }
    let _app = app_lock(paths, app)?;
    if record_path(paths, app).exists() {
        // Left by a crash (before the caller recorded it) or a reboot
        // (namespace gone): undone first, so attach can be retried.
        detach_inner(paths, app, &dirs, false)?;
    }
    let _guard = lock(paths, &format!("net-{}", net.as_deref().unwrap_or("-none")))?;
    // Read under the network's lock: `network rm` takes it too, so the
    // definition cannot go away while this app joins.
    let list = net
        .as_deref()
        .map(|n| read_conflist(paths, n))
        .transpose()?;
    if let (Some(n), Some(d)) = (&net, list.as_ref().and_then(definition))
        && !paths.run.join("subnets").join(n).exists()
    {
        // The run directory was forgotten (a reboot): claim the subnet again.
        claim_subnet(paths, n, &d.subnet)?;
    }
    let appdir = paths.app(app);
    fs::create_dir_all(&appdir).map_err(io("creating", &appdir))?;
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut att = Attachment {
        mode: match mode {
            Mode::Bridge(_) => "bridge",
            Mode::Host => "host",
            Mode::None => "none",
        }
        .into(),
        netns: None,
        network: net.clone(),
        ip: None,
        ports: ports.to_vec(),
        cni_id: cni_id(paths, app),
    };
    if *mode == Mode::Host {
        let extra = names_of(paths, app).1;
        let mut hosts =
            fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts_content(app, None, &[], &[]));
        // The host's file, then the app's extra entries (its own part only).
        let own = hosts_content(app, None, &[], &extra);
        for l in own.lines().skip(3) {
            if !hosts.ends_with('\n') && !hosts.is_empty() {
                hosts.push('\n');
            }
            hosts.push_str(l);
            hosts.push('\n');
        }
        write_in_place(&hosts_path(paths, app), &hosts)?;
        write_in_place(&resolv_path(paths, app), &host_resolv)?;
        save_record(paths, app, &att)?;
        return Ok(att);
    }
    att.netns = Some(netns_path(paths, app));
    {
        // Two apps started at once must not both get a host port: the
        // check and the record that claims it happen under one lock.
        let _ports = lock(paths, "ports")?;
        taken_by_others(paths, Some(app), ports)?;
        // Recorded before the first side effect: a crash from here on is
        // undone by detach from this file.
        save_record(paths, app, &att)?;
    }
    let r = attach_ns(paths, app, &dirs, list.as_ref(), &mut att, &host_resolv);
    if let Err(e) = r {
        let _ = detach_inner(paths, app, &dirs, true);
        return Err(e);
    }
    Ok(att)
}

fn attach_ns(
    paths: &Paths,
    app: &str,
    dirs: &[PathBuf],
    list: Option<&Value>,
    att: &mut Attachment,
    host_resolv: &str,
) -> Result<(), NetError> {
    let ns = att
        .netns
        .clone()
        .expect("attach_ns is for apps with a netns");
    create_netns(&ns)?;
    let lo = runtime_conf(&att.cni_id, Some(&ns), "lo", &[]);
    cni::add_list(dirs, &loopback_list(), &lo, &mut |_| {})?;
    let Some(list) = list else {
        let extra = names_of(paths, app).1;
        write_in_place(
            &hosts_path(paths, app),
            &hosts_content(app, None, &[], &extra),
        )?;
        write_in_place(&resolv_path(paths, app), host_resolv)?;
        return Ok(());
    };
    let rt = runtime_conf(&att.cni_id, Some(&ns), IFNAME, &att.ports);
    let rp = result_path(paths, app);
    if let Some(d) = rp.parent() {
        fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    let mut save_err = None;
    let result = cni::add_list(dirs, list, &rt, &mut |r| {
        if let Err(e) = write_atomic(&rp, r.to_string().as_bytes()) {
            save_err.get_or_insert(e);
        }
    })?;
    if let Some(e) = save_err {
        return Err(e);
    }
    att.ip = first_ip(&result);
    save_record(paths, app, att)?;
    if let Some(d) = definition(list) {
        guard_localnet(&d.bridge)?;
    }
    let upstream = fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    write_in_place(
        &resolv_path(paths, app),
        &resolv_content(host_resolv, upstream.as_deref()),
    )?;
    update_hosts(
        paths,
        att.network
            .as_deref()
            .expect("a bridge attachment names its network"),
    )
}

/// Takes `app` off its network: see the module comment. Idempotent.
pub fn detach(paths: &Paths, app: &str) -> Result<(), NetError> {
    validate_name(app)?;
    let _app = app_lock(paths, app)?;
    detach_inner(paths, app, &cni::plugin_dirs(), false)
}

/// Serializes attach and detach of one app (the network's lock is held
/// only where apps of a network meet: records, hosts files, the bridge).
fn app_lock(paths: &Paths, app: &str) -> Result<Flock<File>, NetError> {
    lock(paths, &format!("app-{app}.net"))
}

/// Two phases: DEL and the namespace first, without the network's lock (so
/// many apps leave in parallel: the plugins lock what they share — IPAM,
/// xtables); then, under it (taken here unless `net_locked`), the record,
/// the other apps' hosts files and the bridge when the last app left.
fn detach_inner(
    paths: &Paths,
    app: &str,
    dirs: &[PathBuf],
    net_locked: bool,
) -> Result<(), NetError> {
    let ns = netns_path(paths, app);
    let rec = record_path(paths, app);
    let rp = result_path(paths, app);
    let att = attachment(paths, app);
    let net = att.as_ref().and_then(|a| a.network.clone());
    if let (Some(att), Some(net)) = (&att, &net) {
        let id = if att.cni_id.is_empty() {
            cni_id(paths, app)
        } else {
            att.cni_id.clone()
        };
        match read_conflist(paths, net) {
            Ok(list) => {
                let prev: Option<Value> = fs::read_to_string(&rp)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok());
                let rt = runtime_conf(&id, Some(&ns), IFNAME, &att.ports);
                // A failed DEL keeps the records, so a retry can finish it.
                cni::del_list(dirs, &list, &rt, prev.as_ref())?;
            }
            // The definition is gone (removed by hand): nothing to DEL with.
            Err(NetError::NoSuchNetwork(_)) => {}
            Err(e) => return Err(e),
        }
    }
    remove_netns(&ns)?;
    let _ = fs::remove_file(&rp);
    match &net {
        Some(net) => {
            let _guard = if net_locked {
                None
            } else {
                Some(lock(paths, &format!("net-{net}"))?)
            };
            let _ = fs::remove_file(&rec);
            update_hosts(paths, net)?;
            if !attachments(paths)
                .iter()
                .any(|(_, a)| a.network.as_deref() == Some(net.as_str()))
                && let Ok(v) = read_conflist(paths, net)
                && let Some(d) = definition(&v)
            {
                // The last app left: the bridge goes (the plugin recreates it).
                delete_bridge(&d.bridge)?;
            }
        }
        None => {
            let _ = fs::remove_file(&rec);
        }
    }
    let _ = fs::remove_file(hosts_path(paths, app));
    let _ = fs::remove_file(resolv_path(paths, app));
    Ok(())
}

/// CNI CHECK of an app's attachment (its interface, address, routes and
/// rules still as ADD made them): Ok for host/none and for no attachment.
pub fn check(paths: &Paths, app: &str) -> Result<(), NetError> {
    validate_name(app)?;
    let Some(att) = attachment(paths, app) else {
        return Ok(());
    };
    let Some(net) = &att.network else {
        return Ok(());
    };
    let list = read_conflist(paths, net)?;
    let rp = result_path(paths, app);
    let prev: Value = fs::read_to_string(&rp)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| NetError::Io {
            what: "reading the CNI result",
            path: rp.clone(),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
    let ns = netns_path(paths, app);
    let rt = runtime_conf(&att.cni_id, Some(&ns), IFNAME, &att.ports);
    cni::check_list(&cni::plugin_dirs(), &list, &rt, &prev)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse() {
        let p = parse_port("127.0.0.1:8080:80").unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (8080, 80, Proto::Tcp)
        );
        let p = parse_port("53:53/udp").unwrap();
        assert_eq!((p.host_ip, p.proto), (None, Proto::Udp));
        let p = parse_port("[::1]:8080:80/tcp").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(p.to_string(), "[::1]:8080:80/tcp");
        for bad in [
            "80",
            "0:80",
            "70000:80",
            "80:x",
            "1.2.3:80:80",
            "80:80/sctp",
            "a:b:c:d",
            ":80",
        ] {
            let e = parse_port(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        assert!(
            parse_port("8080:99999")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
    }

    #[test]
    fn modes_parse() {
        assert_eq!(parse_mode("bridge").unwrap(), Mode::Bridge("rrun0".into()));
        assert_eq!(parse_mode("host").unwrap(), Mode::Host);
        assert_eq!(parse_mode("none").unwrap(), Mode::None);
        assert_eq!(
            parse_mode("backend").unwrap(),
            Mode::Bridge("backend".into())
        );
        assert!(parse_mode("../x").is_err());
    }

    #[test]
    fn subnets_parse_and_overlap() {
        let a = parse_cidr("10.88.0.0/24").unwrap();
        assert_eq!(a.gateway().to_string(), "10.88.0.1");
        assert!(a.overlaps(parse_cidr("10.88.0.0/16").unwrap()));
        assert!(!a.overlaps(parse_cidr("10.88.1.0/24").unwrap()));
        assert!(
            parse_cidr("10.88.0.1/24")
                .unwrap_err()
                .to_string()
                .contains("10.88.0.0/24")
        );
        assert!(parse_cidr("10.88.0.0/31").is_err());
        assert!(parse_cidr("127.0.0.0/8").is_err());
        let taken = vec![
            (a, "x".to_string()),
            (parse_cidr("10.88.1.0/24").unwrap(), "y".into()),
        ];
        assert_eq!(pick_subnet(&taken).unwrap().to_string(), "10.88.2.0/24");
    }

    #[test]
    fn hosts_and_resolv() {
        let m = |n: &str, ip: &str, al: &[&str]| Member {
            name: n.into(),
            ip: ip.parse().unwrap(),
            aliases: al.iter().map(|a| a.to_string()).collect(),
        };
        let peers = vec![m("a", "10.0.0.2", &["web"]), m("p-db", "10.0.0.3", &["db"])];
        let h = hosts_content("a", Some("10.0.0.2".parse().unwrap()), &peers, &[]);
        assert!(h.contains("10.0.0.2\ta web\n") && h.contains("10.0.0.3\tp-db db\n"));
        assert_eq!(h.matches("\ta").count(), 1);
        // Extra entries: NAME:IP, IPv6 too; anything that could break a
        // line or is no address is left out; bad aliases too.
        let extra = [
            "gw:10.0.0.1".to_string(),
            "v6:::1".into(),
            "bad name:1.2.3.4".into(),
            "x:notanip".into(),
            "nl\n:1.1.1.1".into(),
        ];
        let peers = vec![m("b", "10.0.0.4", &["ok", "bad alias", "x#y"])];
        let h = hosts_content("a", None, &peers, &extra);
        assert!(h.contains("127.0.1.1\ta\n"), "{h}");
        assert!(h.contains("10.0.0.4\tb ok\n"), "{h}");
        assert!(h.ends_with("10.0.0.1\tgw\n::1\tv6\n"), "{h}");
        assert_eq!(h.lines().count(), 6, "{h}");
        let r = resolv_content(
            "search x\nnameserver 127.0.0.53\n",
            Some("nameserver 1.1.1.1\n"),
        );
        assert_eq!(r, "nameserver 1.1.1.1\n");
        let r = resolv_content("search x\nnameserver 127.0.0.1\n", None);
        assert_eq!(r, "search x\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let r = resolv_content("nameserver 10.1.1.1\nnameserver ::1\n", None);
        assert_eq!(r, "nameserver 10.1.1.1\n");
    }

    #[test]
    fn names() {
        for ok in ["a", "web-1", "A.b_c", &"x".repeat(63)] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "-a", ".a", "a/b", "a b", &"x".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
