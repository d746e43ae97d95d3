//! Talking to systemd over D-Bus (zbus): StartTransientUnit and StopUnit
//! with a wait for their job, ResetFailedUnit, SetUnitProperties, and the
//! few properties rrun reads (Version, a unit's ControlGroup, the
//! InvocationID, Description and ActiveState that tell rrun's unit from
//! another that took its name).
//!
//! Connecting starts zbus's threads, so a connection is made only under
//! `--systemd-cgroup`, and in `create` only after the container's process
//! exists (rrun forks nothing but std's hook commands after that). Before
//! any side effect, `precheck` only tries the socket, without threads.

use std::time::Duration;

use futures_lite::StreamExt;
use serde::Serialize;
use zbus::zvariant::{self, DynamicType, OwnedObjectPath, OwnedValue};

use super::{Property, SystemdError, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
/// How long a unit's start or stop may take (runc waits 30 s too).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Which systemd: the system's (root), or the user's own (rootless).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    System,
    User,
}

impl Which {
    /// The user's systemd for a rootless rrun, as runc chooses: any
    /// non-root user, and root in a user namespace whose root is a
    /// user on the host (rootless podman runs the runtime so) when that
    /// user's bus is there.
    pub fn for_caller() -> Which {
        if !nix::unistd::geteuid().is_root() {
            return Which::User;
        }
        match host_uid_of_root() {
            Some(uid) if uid != 0 && Which::User.address().is_ok() => Which::User,
            _ => Which::System,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Which::System => "system",
            Which::User => "user",
        }
    }

    /// The bus address: DBUS_SYSTEM_BUS_ADDRESS or the standard socket;
    /// for the user, DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus.
    fn address(self) -> Result<String, SystemdError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match self {
            Which::System => Ok(env("DBUS_SYSTEM_BUS_ADDRESS")
                .unwrap_or_else(|| "unix:path=/run/dbus/system_bus_socket".into())),
            Which::User => env("DBUS_SESSION_BUS_ADDRESS")
                .or_else(|| env("XDG_RUNTIME_DIR").map(|d| format!("unix:path={d}/bus")))
                .ok_or_else(|| SystemdError::Unreachable {
                    bus: "user",
                    addr: "$DBUS_SESSION_BUS_ADDRESS".into(),
                    why: "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set \
                          (rootless --systemd-cgroup needs the user's systemd and dbus)"
                        .into(),
                }),
        }
    }

    fn unreachable(self, addr: &str, why: impl ToString) -> SystemdError {
        SystemdError::Unreachable {
            bus: self.name(),
            addr: addr.strip_prefix("unix:path=").unwrap_or(addr).to_string(),
            why: why.to_string(),
        }
    }
}

/// In a user namespace other than the host's, the host uid its root maps
/// to (the uid the bus sees through SO_PEERCRED); None in the host's.
fn host_uid_of_root() -> Option<u32> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    root_in_map(&map)
}

fn root_in_map(map: &str) -> Option<u32> {
    let lines: Vec<Vec<u64>> = map
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .collect();
    if lines.len() == 1 && lines[0] == [0, 0, 4_294_967_295] {
        return None;
    }
    lines
        .iter()
        .find(|l| l.len() == 3 && l[0] == 0 && l[2] > 0)
        .and_then(|l| u32::try_from(l[1]).ok())
}

/// Tries the bus socket (a plain connect, no D-Bus, no threads): create
/// refuses before any side effect when nothing listens there.
pub fn precheck(which: Which) -> Result<(), SystemdError> {
    let addr = which.address()?;
    if let Some(path) = addr
        .strip_prefix("unix:path=")
        .map(|p| p.split(',').next().unwrap_or(p))
    {
        std::os::unix::net::UnixStream::connect(path).map_err(|e| which.unreachable(&addr, e))?;
    }
    Ok(())
}

/// What rrun knows of the unit it started for a container, to tell it
/// from a unit that took the same name later.
pub struct OwnUnit<'a> {
    pub name: &'a str,
    /// The InvocationID read right after the start (hex); None in a state
    /// written before rrun recorded it.
    pub invocation: Option<&'a str>,
    /// rrun's Description for the container (`super::description`).
    pub description: String,
}

/// The unit that has a name now.
#[derive(Debug)]
pub struct UnitInfo {
    /// Hex; empty when systemd has none for it.
    pub invocation: String,
    pub description: String,
    pub active_state: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A connection to one systemd.
pub struct Bus {
    conn: zbus::Connection,
    which: Which,
    addr: String,
}

fn value(v: &Value) -> zvariant::Value<'static> {
    match v {
        Value::Bool(b) => (*b).into(),
        Value::U64(n) => (*n).into(),
        Value::Str(s) => s.clone().into(),
        Value::Strs(v) => v.clone().into(),
        Value::U32s(v) => v.clone().into(),
        Value::Bytes(v) => v.clone().into(),
        Value::Pairs(v) => v.clone().into(),
    }
}

fn props(p: &[Property]) -> Vec<(&'static str, zvariant::Value<'static>)> {
    p.iter().map(|(n, v)| (*n, value(v))).collect()
}

/// The D-Bus error's name and text, or the error itself.
fn why(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, Some(text), _) => format!("{text} ({})", name.as_str()),
        zbus::Error::MethodError(name, None, _) => name.as_str().to_string(),
        e => e.to_string(),
    }
}

fn is_error(e: &zbus::Error, name: &str) -> bool {
    matches!(e, zbus::Error::MethodError(n, _, _) if n.as_str() == name)
}

impl Bus {
    pub fn connect(which: Which) -> Result<Bus, SystemdError> {
        let addr = which.address()?;
        // Root of a user namespace authenticates as the host user it is
        // (the uid the bus daemon sees), not as uid 0.
        let auth_uid = if which == Which::User && nix::unistd::geteuid().is_root() {
            host_uid_of_root()
        } else {
            None
        };
        let conn = async_io::block_on(async {
            let mut b = zbus::connection::Builder::address(addr.as_str())?;
            if let Some(uid) = auth_uid {
                b = b.user_id(uid);
            }
            b.build().await
        })
        .map_err(|e| which.unreachable(&addr, why(&e)))?;
        Ok(Bus { conn, which, addr })
    }

    async fn call<B>(&self, method: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: Serialize + DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
            .await
    }

    fn get_property(&self, path: &str, iface: &str, name: &str) -> zbus::Result<OwnedValue> {
        async_io::block_on(async {
            let reply = self
                .conn
                .call_method(
                    Some(DEST),
                    path,
                    Some("org.freedesktop.DBus.Properties"),
                    "Get",
                    &(iface, name),
                )
                .await?;
            reply.body().deserialize::<OwnedValue>()
        })
    }

    /// systemd's version number (0 if it cannot be read: only the
    /// properties every version has are then used).
    pub fn version(&self) -> u32 {
        self.get_property(PATH, MANAGER, "Version")
            .ok()
            .and_then(|v| String::try_from(v).ok())
            .map_or(0, |s| super::parse_version(&s))
    }

    /// The unit's cgroup (absolute in the hierarchy), as systemd placed it.
    pub fn control_group(&self, unit: &str) -> Result<String, SystemdError> {
        let call_err = |e: zbus::Error| SystemdError::Call {
            what: "reading the cgroup of",
            unit: unit.to_string(),
            why: why(&e),
        };
        let path: OwnedObjectPath = async_io::block_on(async {
            self.call("GetUnit", &(unit,)).await?.body().deserialize()
        })
        .map_err(call_err)?;
        let iface = if unit.ends_with(".slice") {
            "org.freedesktop.systemd1.Slice"
        } else {
            "org.freedesktop.systemd1.Scope"
        };
        let v = self
            .get_property(path.as_str(), iface, "ControlGroup")
            .map_err(call_err)?;
        String::try_from(v).map_err(|e| call_err(e.into()))
    }

    /// Runs a job-returning Manager method and waits for the job to end:
    /// the JobRemoved signals are subscribed to before the call, so the
    /// end cannot be missed. Returns the job's result ("done" on success).
    fn run_job<B>(&self, method: &str, body: &B) -> zbus::Result<Result<String, ()>>
    where
        B: Serialize + DynamicType,
    {
        async_io::block_on(async {
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .sender(DEST)?
                .path(PATH)?
                .interface(MANAGER)?
                .member("JobRemoved")?
                .build();
            let mut signals =
                zbus::MessageStream::for_match_rule(rule, &self.conn, Some(1024)).await?;
            // Without a subscriber systemd may send its signals to the
            // job's requester only; ask for them all, as go-systemd does.
            let _ = self.call("Subscribe", &()).await;
            let job: OwnedObjectPath = self.call(method, body).await?.body().deserialize()?;
            let wait = async {
                while let Some(msg) = signals.next().await {
                    let msg = msg?;
                    let Ok((_, path, _, result)) = msg
                        .body()
                        .deserialize::<(u32, OwnedObjectPath, String, String)>()
                    else {
                        continue;
                    };
                    if path == job {
                        return Ok(Ok(result));
                    }
                }
                Err(zbus::Error::Failure("the bus closed".into()))
            };
            let timeout = async {
                async_io::Timer::after(JOB_TIMEOUT).await;
                Ok(Err(()))
            };
            futures_lite::future::or(wait, timeout).await
        })
    }

    /// What holds the name `unit` now (None: no unit of that name is
    /// loaded): its InvocationID (new at each start), Description and
    /// ActiveState.
    pub fn unit_info(&self, unit: &str) -> Result<Option<UnitInfo>, SystemdError> {
        let call_err = |e: zbus::Error| SystemdError::Call {
            what: "reading",
            unit: unit.to_string(),
            why: why(&e),
        };
        let path: OwnedObjectPath = match async_io::block_on(async {
            self.call("GetUnit", &(unit,)).await?.body().deserialize()
        }) {
            Ok(p) => p,
            Err(e) if is_error(&e, "org.freedesktop.systemd1.NoSuchUnit") => return Ok(None),
            Err(e) => return Err(call_err(e)),
        };
        let get = |name| {
            self.get_property(path.as_str(), UNIT, name)
                .map_err(call_err)
        };
        let text =
            |name| get(name).and_then(|v| String::try_from(v).map_err(|e| call_err(e.into())));
        let id: Vec<u8> = get("InvocationID")?
            .try_into()
            .map_err(|e: zvariant::Error| call_err(e.into()))?;
        Ok(Some(UnitInfo {
            invocation: hex(&id),
            description: text("Description")?,
            active_state: text("ActiveState")?,
        }))
    }

    /// Refuses a unit systemd already runs. StartTransientUnit alone is
    /// not enough: systemd hands a transient unit's name to the caller
    /// whenever the unit has no unit file, and slices systemd made itself
    /// (system.slice, the implicit parents of other units' slices) have
    /// none although they are active and full of the host's processes;
    /// a container made of one would be stopped, and everything in it
    /// killed, at its delete. So a unit that is loaded and not inactive
    /// (or failed: a leftover `start_unit` deals with) is somebody else's.
    pub fn refuse_active(&self, unit: &str) -> Result<(), SystemdError> {
        match self.unit_info(unit)? {
            Some(u) if !matches!(u.active_state.as_str(), "inactive" | "failed") => {
                Err(SystemdError::UnitExists(unit.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Whether the unit holding `mine.name` now is the one rrun started
    /// for the container: the same InvocationID when it was recorded,
    /// else (a state written before rrun recorded it) rrun's Description
    /// for that container. A unit gone, or another one that took the name
    /// since (systemd forgets a stopped scope, and anyone may then start
    /// one of that name), is not.
    pub fn holds(&self, mine: &OwnUnit<'_>) -> Result<bool, SystemdError> {
        Ok(self
            .unit_info(mine.name)?
            .is_some_and(|u| match mine.invocation {
                Some(id) => !id.is_empty() && u.invocation == id,
                None => u.description == mine.description,
            }))
    }

    /// Starts a transient unit with `properties` and waits until it runs.
    /// A unit of that name that exists already is refused (it is somebody
    /// else's) and left as it is; only a failed leftover of this very
    /// container (rrun's Description for it, `description`) is cleared
    /// once first. It is never stopped.
    pub fn start_unit(
        &self,
        unit: &str,
        description: &str,
        properties: &[Property],
    ) -> Result<(), SystemdError> {
        let body = (
            unit,
            "replace",
            props(properties),
            Vec::<(&str, Vec<(&str, zvariant::Value)>)>::new(),
        );
        self.refuse_active(unit)?;
        let mut retried = false;
        let result = loop {
            match self.run_job("StartTransientUnit", &body) {
                Ok(r) => break r,
                Err(e) if is_error(&e, "org.freedesktop.systemd1.UnitExists") => {
                    let leftover = matches!(
                        self.unit_info(unit),
                        Ok(Some(u)) if u.description == description && u.active_state == "failed"
                    );
                    if retried || !leftover {
                        return Err(SystemdError::UnitExists(unit.to_string()));
                    }
                    retried = true;
                    let _ = self.reset_failed(unit);
                }
                Err(e) => {
                    return Err(SystemdError::Call {
                        what: "starting",
                        unit: unit.to_string(),
                        why: self.explain(&e),
                    });
                }
            }
        };
        match result {
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => {
                let _ = self.reset_failed(unit);
                Err(SystemdError::Job {
                    what: "start",
                    unit: unit.to_string(),
                    result: r,
                })
            }
            Err(()) => {
                let _ = self.reset_failed(unit);
                Err(SystemdError::Timeout {
                    what: "start",
                    unit: unit.to_string(),
                    secs: JOB_TIMEOUT.as_secs(),
                })
            }
        }
    }

    /// Stops the unit rrun made and waits for it, then lets systemd forget
    /// it if it failed. Nothing is done to a unit that is not `mine` (see
    /// `holds`): one gone, or another that took its name, counts as gone.
    /// The check is made again before the reset, as the name may be freed
    /// and taken while the stop runs. Returns whether the unit was the
    /// container's (then its cgroups were too).
    pub fn stop_unit(&self, mine: &OwnUnit<'_>) -> Result<bool, SystemdError> {
        let unit = mine.name;
        if !self.holds(mine)? {
            return Ok(false);
        }
        let r = match self.run_job("StopUnit", &(unit, "replace")) {
            Ok(r) => r,
            Err(e) if is_error(&e, "org.freedesktop.systemd1.NoSuchUnit") => return Ok(true),
            Err(e) => {
                return Err(SystemdError::Call {
                    what: "stopping",
                    unit: unit.to_string(),
                    why: self.explain(&e),
                });
            }
        };
        if self.holds(mine).unwrap_or(false) {
            let _ = self.reset_failed(unit);
        }
        match r {
            Ok(r) if r == "done" => Ok(true),
            Ok(r) => Err(SystemdError::Job {
                what: "stop",
                unit: unit.to_string(),
                result: r,
            }),
            Err(()) => Err(SystemdError::Timeout {
                what: "stop",
                unit: unit.to_string(),
                secs: JOB_TIMEOUT.as_secs(),
            }),
        }
    }

    pub fn reset_failed(&self, unit: &str) -> zbus::Result<()> {
        async_io::block_on(self.call("ResetFailedUnit", &(unit,))).map(|_| ())
    }

    /// Changes a running unit's properties (runtime only, as runc: they
    /// last as long as the unit).
    pub fn set_properties(&self, unit: &str, properties: &[Property]) -> Result<(), SystemdError> {
        if properties.is_empty() {
            return Ok(());
        }
        async_io::block_on(self.call("SetUnitProperties", &(unit, true, props(properties))))
            .map(|_| ())
            .map_err(|e| SystemdError::Call {
                what: "setting the properties of",
                unit: unit.to_string(),
                why: self.explain(&e),
            })
    }

    /// A D-Bus error, saying which systemd when nothing answered.
    fn explain(&self, e: &zbus::Error) -> String {
        if is_error(e, "org.freedesktop.DBus.Error.ServiceUnknown") {
            return self.which.unreachable(&self.addr, why(e)).to_string();
        }
        why(e)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_of_a_user_namespace() {
        use super::root_in_map as f;
        assert_eq!(f("         0          0 4294967295\n"), None);
        assert_eq!(f("         0       1000          1\n"), Some(1000));
        assert_eq!(
            f("0 1000 1\n1 100000 65536\n"),
            Some(1000),
            "rootless podman's map"
        );
        assert_eq!(f("1 100000 65536\n"), None, "root unmapped");
    }
}
