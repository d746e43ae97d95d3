//! `rrun app compose up/down/ps/logs/restart` and `rrun app wait`: a
//! compose project's services started in dependency order, each gated on
//! its dependencies' conditions (healthy, completed successfully), checked
//! from the host (the apps' state and times) and from inside (a dependent
//! finds the one-shot's marker and reaches its dependency by service name).
//! Every test has its own app root and project directory; the Env removes
//! apps and networks also when a test fails.

#[macro_use]
mod common;

use common::app::*;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A compose project in a directory of its own.
struct Proj {
    dir: tempfile::TempDir,
    name: String,
}

impl Proj {
    fn new(tag: &str, yaml: &str) -> Proj {
        let dir = tempfile::Builder::new()
            .prefix("rrun-compose-")
            .tempdir()
            .unwrap();
        // Unique per process and test: app names P-S stay short.
        let name = format!("c{}{tag}", std::process::id() % 100_000);
        let p = Proj { dir, name };
        p.write(yaml);
        p
    }

    fn write(&self, yaml: &str) {
        fs::write(self.file(), yaml).unwrap();
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("compose.yaml")
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn app(&self, service: &str) -> String {
        format!("{}-{service}", self.name)
    }

    fn cmd(&self, env: &Env, args: &[&str]) -> Command {
        let file = s(&self.file());
        let mut a = vec!["compose", "-f", &file, "-p", &self.name];
        a.extend_from_slice(args);
        env.cmd(&a)
    }

    #[track_caller]
    fn run(&self, env: &Env, args: &[&str]) -> Output {
        run_timeout(self.cmd(env, args), Duration::from_secs(180))
    }
}

/// The issue's project: db gets healthy after a delay (its health check
/// tests a file its command makes after `sleep 2`, then it serves HTTP);
/// migrate, a one-shot, waits for db healthy, fetches from it by name and
/// leaves a marker; web waits for db healthy and migrate completed, and
/// checks both from inside before it reports.
fn three_services(image: &Path, db_health: &str) -> String {
    let img = s(image);
    format!(
        r#"
services:
  db:
    image: {img}
    command: ["sh", "-c", "sleep 2; echo db-up > /www/db.txt; touch /tmp/ready; exec httpd -f -p 5432 -h /www"]
    healthcheck:
      test: ["CMD-SHELL", "{db_health}"]
      interval: 300ms
      timeout: 2s
      retries: 3
      start_period: 4s
  migrate:
    image: {img}
    command: ["sh", "-c", "wget -q -O /shared/migrated http://db:5432/db.txt && echo migrated"]
    volumes:
      - ./shared:/shared
    depends_on:
      db:
        condition: service_healthy
  web:
    image: {img}
    command: ["sh", "-c", "echo marker=$$(cat /shared/migrated) db=$$(wget -q -O- http://db:5432/db.txt); exec sleep 1000"]
    volumes:
      - ./shared:/shared
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
"#
    )
}

fn state(env: &Env, app: &str) -> Value {
    env.inspect(app)["state"].clone()
}

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {v}")))
        .unwrap()
}

/// The apps whose names start with the project's.
fn project_apps(env: &Env, p: &Proj) -> Vec<String> {
    env.names()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{}-", p.name)))
        .collect()
}

fn web_line(env: &Env, p: &Proj) -> String {
    poll(Duration::from_secs(20), || {
        let out = env.app(&["logs", &p.app("web")]);
        out.stdout
            .lines()
            .find(|l| l.starts_with("marker="))
            .map(String::from)
    })
    .unwrap_or_else(|| panic!("web never reported: {}", env.app(&["logs", &p.app("web")])))
}

#[test]
fn three_services_come_up_in_order_every_time() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let p = Proj::new("o", &three_services(&web_image(), "test -e /tmp/ready"));
    fs::create_dir(p.dir().join("shared")).unwrap();
    let repeat: usize = std::env::var("RRUN_COMPOSE_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for round in 0..repeat {
        let _ = fs::remove_file(p.dir().join("shared/migrated"));
        let up = p.run(&env, &["up", "-d"]);
        assert!(up.success(), "round {round}: up failed:\n{up}");
        // From inside: web found the marker and reached db by its name.
        assert_eq!(web_line(&env, &p), "marker=db-up db=db-up", "round {round}");
        // From the host: migrate started once db was healthy (db serves
        // only after its check can pass) and ended before web started.
        let db = env.inspect(&p.app("db"));
        let mig = state(&env, &p.app("migrate"));
        let web = state(&env, &p.app("web"));
        assert_eq!(mig["exit"]["status"], 0, "round {round}: {mig}");
        assert!(
            time(&mig["finished_at"]) <= time(&web["started_at"]),
            "round {round}: migrate ended {} after web started {}",
            mig["finished_at"],
            web["started_at"]
        );
        assert!(
            time(&db["state"]["started_at"]) < time(&mig["started_at"]),
            "round {round}"
        );
        assert_eq!(db["live"]["health"], "healthy", "round {round}");
        // The progress lines name each step.
        for want in [
            format!("{}  Healthy", p.app("db")),
            format!("{}  Exited", p.app("migrate")),
            format!("{}  Started", p.app("web")),
        ] {
            assert!(
                up.stderr.contains(&want),
                "round {round}: {want:?} in\n{up}"
            );
        }
        if round == 0 {
            let ps = p.run(&env, &["ps", "-a", "--format", "json"]);
            let rows: Value = serde_json::from_str(&ps.ok().stdout).unwrap();
            let services: Vec<&str> = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["service"].as_str().unwrap())
                .collect();
            assert_eq!(services, ["db", "migrate", "web"]);
            let table = p.run(&env, &["ps"]);
            let lines: Vec<&str> = table.ok().stdout.lines().collect();
            assert!(lines[0].starts_with("NAME") && lines[0].contains("SERVICE"));
            // Without -a: the running ones (the one-shot has ended).
            assert_eq!(lines.len(), 3, "{table}");
            assert!(
                lines[1..]
                    .iter()
                    .any(|l| l.contains(&p.app("db")) && l.contains("healthy")),
                "{table}"
            );
            let logs = p.run(&env, &["logs", "web", "migrate"]);
            assert!(
                logs.ok().stdout.contains("web     | marker=db-up"),
                "{logs}"
            );
            assert!(logs.stdout.contains("migrate | migrated"), "{logs}");
            // Up again with nothing changed: everything left alone, the
            // one-shot run again.
            let again = p.run(&env, &["up", "-d"]);
            assert!(
                again
                    .ok()
                    .stderr
                    .contains(&format!("{}  Running", p.app("web"))),
                "{again}"
            );
        }
        let down = p.run(&env, &["down"]);
        assert!(down.success(), "round {round}: down failed:\n{down}");
        assert!(project_apps(&env, &p).is_empty(), "round {round}");
    }
}

#[test]
fn a_failing_health_check_keeps_web_from_starting() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let p = Proj::new("h", &three_services(&web_image(), "echo not yet; exit 1"));
    fs::create_dir(p.dir().join("shared")).unwrap();
    let up = p.run(&env, &["up", "-d"]);
    assert!(!up.success(), "up must fail:\n{up}");
    let last = up.stderr.lines().last().unwrap_or("");
    assert!(
        last.contains("dependency db is unhealthy") && last.contains("last check: exit 1: not yet"),
        "the reason, on the last line:\n{up}"
    );
    assert_eq!(
        up.stderr.lines().filter(|l| l.starts_with("rrun:")).count(),
        1,
        "one error line:\n{up}"
    );
    assert!(
        !project_apps(&env, &p).contains(&p.app("web")),
        "web never made: {:?}",
        env.names()
    );
    assert!(!p.dir().join("shared/migrated").exists());
    p.run(&env, &["down"]).ok();
    assert!(project_apps(&env, &p).is_empty());
}

#[test]
fn down_leaves_nothing() {
    if !ensure_root() {
        return;
    }
    let env = Env::exclusive();
    let port = free_port();
    let p = Proj::new(
        "d",
        &format!(
            r#"
services:
  db:
    image: {img}
    command: ["sh", "-c", "echo up > /data/up; exec httpd -f -p 80 -h /www"]
    volumes: ["data:/data"]
    networks: [back]
  web:
    image: {img}
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["127.0.0.1:{port}:80"]
    depends_on: [db]
  tool:
    image: {img}
    command: ["sleep", "1000"]
    network_mode: none
networks:
  back: {{}}
volumes:
  data: {{}}
"#,
            img = s(&web_image())
        ),
    );
    let before = traces(&env);
    p.run(&env, &["up", "-d"]).ok();
    assert!(
        poll(Duration::from_secs(20), || http_get(&format!(
            "http://127.0.0.1:{port}/"
        )))
        .is_some()
    );
    // What the project made, to look for afterwards.
    let nets: Value =
        serde_json::from_str(&env.app(&["network", "ls", "--format", "json"]).ok().stdout).unwrap();
    let nets = nets.as_array().unwrap().clone();
    let names: Vec<&str> = nets.iter().map(|n| n["name"].as_str().unwrap()).collect();
    let back = format!("{}_back", p.name);
    let default = format!("{}_default", p.name);
    assert!(
        names.contains(&back.as_str()) && names.contains(&default.as_str()),
        "{names:?}"
    );
    let during = traces(&env);
    assert_ne!(before, during);
    // The apps' cgroups (named after the run directory, as paths.rs does).
    let group = env
        .run_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let cgroups_of = format!("find /sys/fs/cgroup -type d -path '*/{group}/*' 2>/dev/null");
    assert!(
        !sh(&cgroups_of).stdout.trim().is_empty(),
        "the apps' cgroups seen"
    );
    let volume = env.root().join("volumes").join(format!("{}_data", p.name));
    assert!(volume.join("up").exists());
    let monitors: Vec<i64> = ["db", "web", "tool"]
        .iter()
        .map(|sv| env.live(&p.app(sv))["monitorPid"].as_i64().unwrap())
        .collect();

    let down = p.run(&env, &["down", "-v"]);
    assert!(down.success(), "{down}");
    // Reverse order: web (depends on db) stopped before db.
    let pos = |what: &str| {
        down.stderr
            .find(&format!("{what}  Removed"))
            .unwrap_or_else(|| panic!("{what} removed:\n{down}"))
    };
    assert!(pos(&p.app("web")) < pos(&p.app("db")), "{down}");
    assert!(pos(&format!("Network {back}")) > pos(&p.app("db")));

    // No app, network, volume.
    assert!(env.names().is_empty(), "{:?}", env.names());
    let left: Vec<_> = fs::read_dir(env.root().join("apps")).unwrap().collect();
    assert!(left.is_empty(), "apps/: {left:?}");
    let nets_left = env.app(&["network", "ls", "--format", "json"]);
    assert!(!nets_left.stdout.contains(&p.name), "{nets_left}");
    assert!(!volume.exists(), "volume removed with -v");
    // Nothing on the host: links, firewall rules (also those naming the
    // project's subnets), mounts, netns, processes, cgroups.
    assert_eq!(traces(&env), before);
    for n in &nets {
        let bridge = n["bridge"].as_str().unwrap();
        assert!(
            !sh(&format!("ip link show {bridge}")).success(),
            "bridge {bridge} left"
        );
        let prefix = n["subnet"]
            .as_str()
            .unwrap()
            .rsplit_once('.')
            .unwrap()
            .0
            .to_string()
            + ".";
        let rules = sh("iptables-save; iptables-save -t nat; nft list ruleset 2>/dev/null");
        let hits: Vec<&str> = rules
            .stdout
            .lines()
            .filter(|l| l.contains(&prefix))
            .collect();
        assert!(hits.is_empty(), "rules of {prefix} left: {hits:?}");
    }
    for m in monitors {
        // Gone, or a zombie not reaped yet (no command line), or its pid
        // reused by something else.
        let cmdline = fs::read(format!("/proc/{m}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&s(env.root())),
            "monitor {m} left"
        );
    }
    let run = env.run_dir();
    for sub in ["netns", "cni/results"] {
        let d = run.join(sub);
        let n = fs::read_dir(&d).map(|r| r.count()).unwrap_or(0);
        assert_eq!(n, 0, "{} not empty", d.display());
    }
    let ctrs = fs::read_dir(run.join("runtime"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(ctrs, 0, "container state left in {}", run.display());
    let cg = sh(&cgroups_of);
    assert!(cg.stdout.trim().is_empty(), "cgroups left: {cg}");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&s(env.root())), "mounts left");
}

#[test]
fn cycles_and_unknown_services_are_one_line_each() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = s(&web_image());
    let p = Proj::new(
        "y",
        &format!(
            r#"
services:
  web:
    image: {img}
    depends_on: [api]
  api:
    image: {img}
    depends_on: [web]
  db:
    image: {img}
"#
        ),
    );
    let up = p.run(&env, &["up", "-d"]);
    assert!(!up.success());
    assert_eq!(
        up.stderr.trim(),
        "rrun: dependency cycle: api -> web -> api",
        "{up}"
    );
    assert!(env.names().is_empty(), "nothing made: {:?}", env.names());
    let p = Proj::new(
        "u",
        &format!("services:\n  db:\n    image: {img}\n    command: [\"sleep\", \"1000\"]\n"),
    );
    let up = p.run(&env, &["up", "-d", "dbb"]);
    assert!(!up.success());
    assert_eq!(up.stderr.trim(), "rrun: no such service: dbb", "{up}");
    assert!(env.names().is_empty());
    let logs = p.run(&env, &["logs", "nope"]);
    assert_eq!(logs.stderr.trim(), "rrun: no such service: nope", "{logs}");
}

#[test]
fn a_changed_file_recreates_only_the_changed_service() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = s(&web_image());
    let yaml = |v: &str| {
        format!(
            r#"
services:
  a:
    image: {img}
    command: ["sleep", "1000"]
    environment:
      V: "{v}"
  b:
    image: {img}
    command: ["sh", "-c", "cat /etc/hosts; exec sleep 1000"]
    depends_on: [a]
  c:
    image: {img}
    command: ["sleep", "1000"]
    depends_on:
      a:
        condition: service_started
        restart: true
"#
        )
    };
    let p = Proj::new("r", &yaml("1"));
    // `rrun app up` is `rrun app compose up`.
    let file = s(&p.file());
    env.app(&["up", "-f", &file, "-p", &p.name, "-d"]).ok();
    let created = |sv: &str| {
        state(&env, &p.app(sv))["created_at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a1, b1, c1) = (created("a"), created("b"), created("c"));
    let c_started = state(&env, &p.app("c"))["started_at"].clone();
    // b finds a by its service name in its hosts file.
    let hosts = poll(Duration::from_secs(10), || {
        let l = env.app(&["logs", &p.app("b")]).stdout;
        l.contains(&p.app("a")).then_some(l)
    })
    .unwrap();
    let line = hosts.lines().find(|l| l.contains(&p.app("a"))).unwrap();
    assert!(line.split_whitespace().any(|w| w == "a"), "alias a: {line}");
    std::thread::sleep(Duration::from_millis(1100));
    p.write(&yaml("2"));
    let up = p.run(&env, &["up", "-d"]);
    up.ok();
    assert!(
        up.stderr.contains(&format!("{}  Recreated", p.app("a"))),
        "{up}"
    );
    assert!(
        up.stderr.contains(&format!("{}  Running", p.app("b"))),
        "{up}"
    );
    assert_ne!(created("a"), a1, "a recreated");
    assert_eq!(created("b"), b1, "b left alone");
    // c asked to follow a's restarts: the same app, started again.
    assert!(
        up.stderr.contains(&format!("{}  Restarted", p.app("c"))),
        "{up}"
    );
    assert_eq!(created("c"), c1);
    assert_ne!(state(&env, &p.app("c"))["started_at"], c_started);
    let env_a = env.inspect(&p.app("a"))["settings"]["env"].to_string();
    assert!(env_a.contains("V=2"), "{env_a}");
    // restart SERVICE: only that one, again running.
    let started = |sv: &str| state(&env, &p.app(sv))["started_at"].clone();
    let (a2, b2) = (started("a"), started("b"));
    std::thread::sleep(Duration::from_millis(1100));
    let r = p.run(&env, &["restart", "-t", "1", "b"]);
    assert!(
        r.ok()
            .stderr
            .contains(&format!("{}  Restarted", p.app("b"))),
        "{r}"
    );
    assert_ne!(started("b"), b2, "b restarted");
    assert_eq!(started("a"), a2, "a left alone");
    assert_eq!(env.live(&p.app("b"))["state"], "running");
    // b gone from the file: an orphan, named by up and down, removed only
    // when asked.
    let b = yaml("2");
    let b_block = &b[b.find("  b:\n").unwrap()..b.find("  c:\n").unwrap()];
    p.write(&b.replace(b_block, ""));
    let up = p.run(&env, &["up", "-d"]);
    assert!(
        up.ok()
            .stderr
            .contains(&format!("not in the file: {}", p.app("b"))),
        "{up}"
    );
    let down = p.run(&env, &["down"]);
    assert!(down.ok().stderr.contains("--remove-orphans"), "{down}");
    assert_eq!(project_apps(&env, &p), [p.app("b")]);
    env.app(&["down", "-f", &file, "-p", &p.name, "--remove-orphans"])
        .ok();
    assert!(project_apps(&env, &p).is_empty());
}

#[test]
fn foreground_up_follows_logs_and_ctrl_c_stops_the_services() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = s(&web_image());
    let p = Proj::new(
        "f",
        &format!(
            r#"
services:
  one:
    image: {img}
    command: ["sh", "-c", "echo hello-one; exec sleep 1000"]
  two:
    image: {img}
    command: ["sh", "-c", "echo hello-two; exec sleep 1000"]
    depends_on: [one]
"#
        ),
    );
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = p
        .cmd(&env, &["up"])
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = poll(Duration::from_secs(30), || {
        let t = fs::read_to_string(out.path()).unwrap();
        (t.contains("one | hello-one") && t.contains("two | hello-two")).then_some(t)
    });
    if seen.is_none() {
        let _ = child.kill();
        panic!(
            "no prefixed lines: {}",
            fs::read_to_string(out.path()).unwrap()
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = wait_child(&mut child, Duration::from_secs(60), "compose up");
    assert_eq!(st.code(), Some(0));
    for sv in ["one", "two"] {
        assert_eq!(env.live(&p.app(sv))["state"], "exited", "{sv} stopped");
    }
    p.run(&env, &["down"]).ok();
    assert!(env.names().is_empty());
}

#[test]
fn wait_tells_met_never_and_timeout_apart() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = s(&web_image());
    env.app(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-start-period",
        "10s",
        &img,
        "sh",
        "-c",
        "sleep 1; touch /tmp/ok; exec sleep 1000",
    ])
    .ok();
    let t = env.app(&["wait", "--timeout", "100ms", "slow"]);
    assert_eq!(t.code, Some(124), "{t}");
    env.app(&["wait", "slow"]).ok();
    env.app(&["wait", "--for", "running", "slow"]).ok();
    env.app(&["run", "-d", "--name", "job", &img, "sh", "-c", "exit 3"])
        .ok();
    env.app(&["wait", "--for", "exited", "job"]).ok();
    let never = env.app(&["wait", "--for", "healthy", "job"]);
    assert_eq!(never.code, Some(1), "{never}");
    assert_eq!(never.stderr.lines().count(), 1, "{never}");
    let gone = env.app(&["wait", "nosuch"]);
    assert_eq!(gone.code, Some(1), "{gone}");
}

#[test]
fn up_timeout_bounds_the_wait_for_a_condition() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = s(&web_image());
    let p = Proj::new(
        "t",
        &format!(
            r#"
services:
  db:
    image: {img}
    command: ["sleep", "1000"]
    healthcheck:
      test: ["CMD-SHELL", "exit 1"]
      interval: 200ms
      start_period: 1h
  web:
    image: {img}
    command: ["sleep", "1000"]
    depends_on:
      db:
        condition: service_healthy
"#
        ),
    );
    let up = p.run(&env, &["up", "-d", "--timeout", "2"]);
    assert!(!up.success(), "{up}");
    let last = up.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("rrun: service web: dependency db not healthy after"),
        "{up}"
    );
    assert!(!project_apps(&env, &p).contains(&p.app("web")));
    // --wait: returns once every service is ready; here never.
    let w = p.run(&env, &["up", "--wait", "--timeout", "1", "db"]);
    assert!(
        !w.success() && w.stderr.contains("not healthy after"),
        "{w}"
    );
    p.run(&env, &["down"]).ok();
}

#[test]
fn up_sd_notify_says_ready_once_the_service_is() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let sd = FakeSystemd::new();
    let p = Proj::new("n", &three_services(&web_image(), "test -e /tmp/ready"));
    fs::create_dir(p.dir().join("shared")).unwrap();
    // db alone (its unit's job): READY once healthy, MAINPID its monitor.
    let mut c = p.cmd(&env, &["up", "--no-deps", "--sd-notify", "db"]);
    c.env("NOTIFY_SOCKET", &sd.path);
    run_timeout(c, Duration::from_secs(120)).ok();
    let live = env.live(&p.app("db"));
    assert_eq!(live["health"], "healthy", "{live}");
    let ready = format!("MAINPID={}\nREADY=1\n", live["monitorPid"]);
    let msgs = sd.messages();
    assert!(msgs.contains(&ready), "no {ready:?} in {msgs:?}");
    assert!(project_apps(&env, &p) == [p.app("db")], "db only");
    // The one-shot: up returns once it exited 0, READY without MAINPID.
    let mut c = p.cmd(&env, &["up", "--no-deps", "--sd-notify", "migrate"]);
    c.env("NOTIFY_SOCKET", &sd.path);
    run_timeout(c, Duration::from_secs(120)).ok();
    let st = state(&env, &p.app("migrate"));
    assert_eq!(st["phase"], "exited", "{st}");
    assert_eq!(st["exit"]["status"], 0, "{st}");
    assert!(p.dir().join("shared/migrated").exists());
    assert!(sd.messages().contains(&"READY=1\n".to_string()));
    p.run(&env, &["down"]).ok();
}

#[test]
fn registry_images_fail_in_one_line_without_skopeo_or_registry() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let p = Proj::new(
        "g",
        "services:\n  cache:\n    image: docker.io/library/redis:7\n",
    );
    // A PATH without skopeo: the error says what to do, nothing is made.
    let empty = tempfile::tempdir().unwrap();
    let mut c = p.cmd(&env, &["up", "-d"]);
    c.env("PATH", empty.path());
    let up = run_timeout(c, Duration::from_secs(60));
    assert!(!up.success());
    assert_eq!(
        up.stderr.trim(),
        "rrun: image docker.io/library/redis:7: rrun cannot pull from registries; copy it with \
         `skopeo copy docker://docker.io/library/redis:7 oci:DIR:TAG` and use image: oci:DIR:TAG",
        "{up}"
    );
    assert!(env.names().is_empty());
    let nets = env.app(&["network", "ls", "--format", "json"]);
    assert!(!nets.stdout.contains(&p.name), "{nets}");
    // With skopeo: its failure in one line (no registry listens there),
    // no half-copied image left.
    if have_cmd("skopeo") {
        p.write("services:\n  cache:\n    image: localhost:1/none:1\n");
        let up = p.run(&env, &["up", "-d"]);
        assert!(!up.success());
        let errs: Vec<&str> = up
            .stderr
            .lines()
            .filter(|l| l.starts_with("rrun:"))
            .collect();
        assert_eq!(errs.len(), 1, "{up}");
        assert!(
            errs[0].starts_with("rrun: image localhost:1/none:1: skopeo copy failed: "),
            "{up}"
        );
        let cache = env.root().join("compose-images");
        let left = fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "{}", cache.display());
        assert!(env.names().is_empty());
    }
}

#[test]
fn up_wait_returns_once_ready_and_takes_a_finished_job_as_done() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = s(&web_image());
    let yaml = |job: &str| {
        format!(
            r#"
services:
  db:
    image: {img}
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 1000"]
    healthcheck:
      test: ["CMD-SHELL", "test -e /tmp/ready"]
      interval: 200ms
      start_period: 10s
  job:
    image: {img}
    command: ["sh", "-c", "{job}"]
"#
        )
    };
    let p = Proj::new("w", &yaml("echo done"));
    p.run(&env, &["up", "--wait"]).ok();
    // --wait returned: db is healthy already, the job ended well.
    assert_eq!(env.live(&p.app("db"))["health"], "healthy");
    let job = state(&env, &p.app("job"));
    assert_eq!(job["exit"]["status"], 0, "{job}");
    // A job that fails: --wait says so (db gets healthy after the job
    // ended: its end is seen).
    p.run(&env, &["down"]).ok();
    p.write(&yaml("exit 3"));
    let up = p.run(&env, &["up", "--wait"]);
    assert!(!up.success(), "{up}");
    assert!(
        up.stderr.contains("service job is not running (exit 3)"),
        "{up}"
    );
    p.run(&env, &["down"]).ok();
}

#[test]
fn logs_follow_prints_every_service_until_they_end() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = s(&web_image());
    let p = Proj::new(
        "l",
        &format!(
            r#"
services:
  first:
    image: {img}
    command: ["sh", "-c", "echo one; sleep 1; echo two; echo oops >&2"]
  second:
    image: {img}
    command: ["sh", "-c", "echo three; sleep 2; echo four"]
"#
        ),
    );
    p.run(&env, &["up", "-d"]).ok();
    // Returns by itself once both have ended, every line there.
    let logs = p.run(&env, &["logs", "-f"]);
    logs.ok();
    for want in [
        "first  | one",
        "first  | two",
        "second | three",
        "second | four",
    ] {
        assert!(logs.stdout.lines().any(|l| l == want), "{want:?} in {logs}");
    }
    assert!(logs.stderr.lines().any(|l| l == "first  | oops"), "{logs}");
    let tail = p.run(&env, &["logs", "-n", "1", "second"]);
    assert_eq!(tail.ok().stdout, "second | four\n");
    p.run(&env, &["down"]).ok();
}
