//! `rrun app unit` and `--sd-notify`: the generated systemd units pass
//! `systemd-analyze verify`, and readiness reaches a notify socket (a fake
//! systemd here: a datagram socket that acknowledges the barrier) only once
//! the app is healthy, naming the app's monitor as the main process. The
//! real thing (systemd as PID 1, pure cgroup v2, at boot) is
//! scripts/vm/boot-test.sh (`make vm-boot-test`).

#[macro_use]
mod common;

use common::app::*;
use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `systemd-analyze verify` on the files; None (with the reason printed)
/// when it cannot run here at all.
fn verify(files: &[std::path::PathBuf]) -> Option<Output> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        skip("systemd-analyze is not installed (apt-get install systemd)");
        return None;
    }
    let mut c = Command::new("systemd-analyze");
    c.arg("verify").args(files);
    Some(run_timeout(c, Duration::from_secs(60)))
}

fn unit_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// verify prints warnings without failing for some problems: none allowed.
fn assert_clean(out: &Output) {
    assert!(out.success(), "systemd-analyze verify failed:\n{out}");
    let noise = |l: &str| {
        // The host runs no systemd: what verify says about the host's own
        // units (not ours) is not our business.
        !l.contains("rrun-") || l.trim().is_empty()
    };
    let ours: Vec<&str> = out.stderr.lines().filter(|l| !noise(l)).collect();
    assert!(ours.is_empty(), "verify warns about our units:\n{out}");
}

#[test]
fn app_and_serve_units_pass_systemd_analyze_verify() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let port = free_port().to_string();
    let publish = format!("127.0.0.1:{port}:80");
    env.app(&[
        "run",
        "-d",
        "--name",
        "unit-web",
        "-p",
        &publish,
        "-e",
        "GREETING=100% \"quoted\" $HOME \\ it's",
        "--health-cmd",
        "test -e /ok",
        "--health-interval",
        "1s",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "3",
        "-l",
        "a b=c;d",
        &s(&web_image()),
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .ok();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("units");
    env.app(&[
        "unit",
        "--output",
        &s(&dir),
        "--serve",
        "--listen",
        "127.0.0.1:9780",
        "unit-web",
    ])
    .ok();
    let files = unit_files(&dir);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["rrun-app-serve.service", "rrun-app-unit-web.service"]
    );
    let text = fs::read_to_string(&files[1]).unwrap();
    assert!(text.contains("Type=notify\n"), "{text}");
    assert!(
        text.contains("\"GREETING=100%% \\\"quoted\\\" $$HOME \\\\ it\\'s\""),
        "{text}"
    );
    let Some(v) = verify(&files) else { return };
    assert_clean(&v);
    // What verify catches: a broken unit fails (the check can fail).
    fs::write(
        dir.join("rrun-app-broken.service"),
        text.replace("Type=notify", "Type=notifyy"),
    )
    .unwrap();
    let bad = verify(&[dir.join("rrun-app-broken.service")]).unwrap();
    assert!(
        !bad.success() || bad.stderr.contains("notifyy"),
        "verify accepted a bad unit:\n{bad}"
    );
    // The printed form: the same units, each after a "# FILE" line.
    let printed = env.app(&["unit", "unit-web"]);
    printed.ok();
    assert!(printed.stdout.starts_with("# rrun-app-unit-web.service\n"));
    assert!(printed.stdout.contains(&text));
}

#[test]
fn compose_units_pass_systemd_analyze_verify() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    fs::write(
        &file,
        format!(
            "name: shop\n\
             services:\n\
             \x20 db:\n\
             \x20   image: {img}\n\
             \x20   healthcheck:\n\
             \x20     test: [\"CMD\", \"true\"]\n\
             \x20 migrate:\n\
             \x20   image: {img}\n\
             \x20   command: [\"true\"]\n\
             \x20   depends_on: [db]\n\
             \x20 web:\n\
             \x20   image: {img}\n\
             \x20   ports: [\"8080:80\"]\n\
             \x20   depends_on:\n\
             \x20     db: {{condition: service_healthy}}\n\
             \x20     migrate: {{condition: service_completed_successfully}}\n",
            img = s(&web_image())
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("units");
    env.app(&["unit", "--output", &s(&out_dir), "-f", &s(&file)])
        .ok();
    let files = unit_files(&out_dir);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "rrun-shop-db.service",
            "rrun-shop-migrate.service",
            "rrun-shop-web.service",
            "rrun-shop.target"
        ]
    );
    let web = fs::read_to_string(&files[2]).unwrap();
    assert!(
        web.contains("Requires=rrun-shop-db.service\nAfter=rrun-shop-db.service\n"),
        "{web}"
    );
    assert!(web.contains("After=rrun-shop-migrate.service\n"), "{web}");
    let migrate = fs::read_to_string(&files[1]).unwrap();
    assert!(migrate.contains("Type=oneshot\n"), "{migrate}");
    assert!(
        web.contains(&format!(
            " compose -f {} -p shop up --no-deps --sd-notify web\n",
            s(&file)
        )),
        "{web}"
    );
    // Generating made nothing: no app root.
    assert!(!env.root().join("apps").exists());
    let Some(v) = verify(&files) else { return };
    assert_clean(&v);
    // A bad compose file: one line naming what is wrong, nothing written.
    fs::write(&file, "services:\n  web:\n    imag: x\n").unwrap();
    let out = env.app(&[
        "unit",
        "--output",
        &s(&dir.path().join("none")),
        "-f",
        &s(&file),
    ]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("imag"), "{out}");
    assert!(!dir.path().join("none").exists());
}

/// The image `make vm-boot-test` runs (scripts/vm/boot-test.sh builds it
/// through this test when it is missing).
#[test]
fn the_test_web_image_builds() {
    let img = web_image();
    assert!(fs::metadata(&img).unwrap().len() > 0, "{}", img.display());
}

#[test]
fn unit_refuses_what_it_cannot_make() {
    let env = Env::new();
    for (args, want) in [
        (&["unit", "nosuchapp"][..], "no app named \"nosuchapp\""),
        (&["unit", "bad/name"][..], "invalid app name"),
        (&["unit"][..], "nothing to make units for"),
    ] {
        let out = env.app(args);
        assert!(!out.success(), "{out}");
        assert!(out.stderr.contains(want), "{args:?}: {out}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    }
}

/// --install writes where systemd looks (here the user's directory, under a
/// temporary HOME: never the host's /etc/systemd) and reloads systemd; with
/// no systemd to reload it says so in one line, the files written.
#[test]
fn install_says_when_systemd_cannot_be_reloaded() {
    let env = Env::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = env.cmd(&["unit", "--install", "--user", "--serve"]);
    c.env("HOME", home.path()).env_remove("XDG_CONFIG_HOME");
    let out = run_timeout(c, Duration::from_secs(60));
    let file = home
        .path()
        .join(".config/systemd/user/rrun-app-serve.service");
    assert!(file.exists(), "{out}");
    assert!(
        fs::read_to_string(&file)
            .unwrap()
            .contains("WantedBy=default.target\n"),
        "--user units are wanted by default.target"
    );
    let reloaded = Command::new("systemctl")
        .args(["--user", "daemon-reload"])
        .env("HOME", home.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if reloaded {
        out.ok();
    } else {
        assert!(!out.success(), "{out}");
        assert!(out.stderr.contains("daemon-reload"), "{out}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    }
}

#[test]
fn unit_refuses_an_app_whose_image_path_is_relative() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = web_image();
    let mut c = env.cmd(&["run", "-d", "--name", "rel", "web.tar", "sleep", "1000"]);
    c.current_dir(img.parent().unwrap());
    run_timeout(c, Duration::from_secs(90)).ok();
    let out = env.app(&["unit", "rel"]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("relative path"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    env.app(&["rm", "-f", "rel"]).ok();
}

#[test]
fn sd_notify_says_ready_once_healthy_with_the_monitor_as_main_pid() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let sd = FakeSystemd::new();
    let img = web_image();
    // Healthy only once /tmp/up exists, which the program makes after a
    // while: READY must wait for it.
    let mut c = env.cmd(&[
        "run",
        "-d",
        "--sd-notify",
        "--name",
        "notify-db",
        "--health-cmd",
        "test -e /tmp/up",
        "--health-interval",
        "300ms",
        "--health-retries",
        "30",
        &s(&img),
        "sh",
        "-c",
        "sleep 2; touch /tmp/up; exec sleep 1000",
    ]);
    c.env("NOTIFY_SOCKET", &sd.path);
    let out = run_timeout(c, Duration::from_secs(90));
    out.ok();
    // When `run` returns, the app is healthy (READY was sent after that).
    let live = env.live("notify-db");
    assert_eq!(live["health"], "healthy", "{live}");
    let monitor = env.inspect("notify-db")["live"]["monitorPid"].clone();
    let monitor = monitor
        .as_i64()
        .or_else(|| env.inspect("notify-db")["monitorPid"].as_i64())
        .unwrap_or_else(|| panic!("no monitorPid in {}", env.inspect("notify-db")));
    let msgs = sd.messages();
    let ready = format!("MAINPID={monitor}\nREADY=1\n");
    let at = msgs.iter().position(|m| *m == ready);
    assert!(at.is_some(), "no {ready:?} in {msgs:?}");
    assert_eq!(
        msgs.get(at.unwrap() + 1).map(String::as_str),
        Some("BARRIER=1\n")
    );
    assert!(msgs[0].starts_with("STATUS="), "{msgs:?}");
    // The app still runs on its monitor after `run` ended.
    assert_eq!(env.live("notify-db")["state"], "running");

    // start --sd-notify: the same after a stop.
    env.app(&["stop", "notify-db"]).ok();
    let mut c = env.cmd(&["start", "--sd-notify", "notify-db"]);
    c.env("NOTIFY_SOCKET", &sd.path);
    run_timeout(c, Duration::from_secs(90)).ok();
    assert_eq!(env.live("notify-db")["health"], "healthy");
    let msgs = sd.messages();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("MAINPID=") && m.ends_with("READY=1\n")),
        "{msgs:?}"
    );
    env.app(&["rm", "-f", "notify-db"]).ok();
}

#[test]
fn sd_notify_fails_when_the_app_never_gets_ready() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let sd = FakeSystemd::new();
    let mut c = env.cmd(&[
        "run",
        "-d",
        "--sd-notify",
        "--name",
        "notify-bad",
        "--health-cmd",
        "false",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        &s(&web_image()),
        "sleep",
        "1000",
    ]);
    c.env("NOTIFY_SOCKET", &sd.path);
    let out = run_timeout(c, Duration::from_secs(90));
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("notify-bad is unhealthy"), "{out}");
    assert!(
        !sd.messages().iter().any(|m| m.contains("READY=1")),
        "READY sent for an unhealthy app"
    );
    // Without a socket, --sd-notify needs -d.
    let out = env.app(&["run", "--sd-notify", &s(&web_image())]);
    assert!(!out.success());
    env.app(&["rm", "-f", "notify-bad"]).ok();
}

/// Under a unit the monitor is the main process: its exit status is what
/// systemd judges the unit by. This process becomes a subreaper, so the
/// (detached) monitors end up its children and their statuses can be read.
#[test]
fn the_monitor_exits_zero_only_for_a_clean_end() {
    if !ensure_root() {
        return;
    }
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let env = Env::new();
    let img = s(&web_image());
    let monitor_of = |name: &str| -> i32 {
        let v = env.inspect(name);
        v["live"]["monitorPid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} has no monitor: {v}")) as i32
    };
    let status_of = |pid: i32| {
        // Bounded: the monitor ends right after its app (or the test hangs
        // here, which the harness's timeout reports).
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap()
    };
    use nix::sys::wait::WaitStatus::Exited;
    // The program ends by itself: exit 0 is success, exit 3 failure.
    for (name, code, want) in [("mon-ok", "0", 0), ("mon-fail", "3", 2)] {
        env.app(&[
            "run",
            "-d",
            "--name",
            name,
            &img,
            "sh",
            "-c",
            &format!("sleep 3; exit {code}"),
        ])
        .ok();
        let m = monitor_of(name);
        match status_of(m) {
            Exited(_, c) => assert_eq!(c, want, "{name}"),
            other => panic!("{name}: monitor {other:?}"),
        }
    }
    // Stopped by the user: success, whatever the program's status.
    env.app(&["run", "-d", "--name", "mon-stop", &img, "sleep", "1000"])
        .ok();
    let m = monitor_of("mon-stop");
    env.app(&["stop", "mon-stop"]).ok();
    match status_of(m) {
        Exited(_, c) => assert_eq!(c, 0, "stopped"),
        other => panic!("stopped: monitor {other:?}"),
    }
    for n in ["mon-ok", "mon-fail", "mon-stop"] {
        env.app(&["rm", "-f", n]).ok();
    }
}

/// What a compose service's unit runs: `compose up --no-deps --sd-notify S`
/// says READY with S's monitor as the main process once S is healthy, and
/// starts nothing else.
#[test]
fn compose_up_sd_notify_says_ready_for_one_service() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let sd = FakeSystemd::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    let img = s(&web_image());
    fs::write(
        &file,
        format!(
            "name: unitnotify\nservices:\n  db:\n    image: {img}\n    network_mode: none\n    \
             command: [\"sh\", \"-c\", \"sleep 1; touch /tmp/up; exec sleep 1000\"]\n    \
             healthcheck:\n      test: [\"CMD\", \"test\", \"-e\", \"/tmp/up\"]\n      interval: 300ms\n      retries: 30\n  \
             web:\n    image: {img}\n    network_mode: none\n    command: [\"sleep\", \"1000\"]\n    depends_on:\n      \
             db: {{condition: service_healthy}}\n"
        ),
    )
    .unwrap();
    let f = s(&file);
    let mut c = env.cmd(&["compose", "-f", &f, "up", "--no-deps", "--sd-notify", "db"]);
    c.env("NOTIFY_SOCKET", &sd.path);
    let out = run_timeout(c, Duration::from_secs(120));
    out.ok();
    assert_eq!(env.live("unitnotify-db")["health"], "healthy");
    let monitor = env.live("unitnotify-db")["monitorPid"].as_i64().unwrap();
    let msgs = sd.messages();
    assert!(
        msgs.contains(&format!("MAINPID={monitor}\nREADY=1\n")),
        "{msgs:?}"
    );
    assert_eq!(env.names(), ["unitnotify-db"], "--no-deps: only db");
    env.app(&["compose", "-f", &f, "down"]).ok();
}

/// A project's units never replace another's: project a's service b-c and
/// project a-b's service c are both rrun-a-b-c.service, and a file from
/// an untrusted repository installed with --install would otherwise put
/// its service in the place of the other project's (its ExecStart, at the
/// next boot). The same project's units are written again freely.
#[test]
fn units_never_overwrite_another_projects_units() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("units");
    let write = |project: &str, service: &str| {
        let file = dir.path().join(format!("{project}.yaml"));
        fs::write(
            &file,
            format!("name: {project}\nservices:\n  {service}:\n    image: /srv/x.tar\n"),
        )
        .unwrap();
        env.app(&["unit", "--output", &s(&out_dir), "-f", &s(&file)])
    };
    write("a-b", "c").ok();
    write("a-b", "c").ok();
    let unit = out_dir.join("rrun-a-b-c.service");
    let before = fs::read_to_string(&unit).unwrap();
    let out = write("a", "b-c");
    out.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["rrun-a-b-c.service"]);
    assert_eq!(
        fs::read_to_string(&unit).unwrap(),
        before,
        "the unit was replaced"
    );
    assert!(
        !out_dir.join("rrun-a.target").exists(),
        "a unit of the refused project was written"
    );
}

/// App names meet too (project a's service b-c and project a-b's service c
/// are both the app a-b-c): a compose unit's `rm -f` before and after the
/// service removes only its own project's app, never another's of the
/// same name (compose up already refuses to replace it).
#[test]
fn units_never_remove_another_projects_app() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    fs::write(&file, "name: a\nservices:\n  b-c:\n    image: /srv/x.tar\n").unwrap();
    let out = env.app(&["unit", "-f", &s(&file)]);
    out.ok();
    assert!(
        out.stdout.contains("ExecStartPre=-")
            && out.stdout.contains(" rm -f --if-project a a-b-c\n"),
        "{out}"
    );
    let img = image(env.root(), "img", &[]);
    env.app(&[
        "run",
        "-d",
        "--name",
        "a-b-c",
        "--network",
        "none",
        "--label",
        "com.docker.compose.project=a-b",
        img.to_str().unwrap(),
        "sleep",
        "1000",
    ])
    .ok();
    let out = env.app(&["rm", "-f", "--if-project", "a", "a-b-c"]);
    out.ok();
    assert!(out.stderr.contains("no app of project a"), "{out}");
    assert!(
        env.names().contains(&"a-b-c".to_string()),
        "another project's app was removed"
    );
    env.app(&["rm", "-f", "--if-project", "a-b", "a-b-c"]).ok();
    assert!(env.names().is_empty(), "its own project's app was left");
}

/// The units read the compose file (and .env) again at each start, as
/// root: `rrun app unit` says so when someone else can change them (a
/// project in another user's home, a group-writable directory), since
/// that someone then decides what runs as root at the next boot.
#[test]
fn units_warn_when_others_can_change_what_they_run() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    fs::create_dir(&proj).unwrap();
    set_mode(&proj, 0o755);
    let file = proj.join("compose.yaml");
    fs::write(
        &file,
        "name: rt20w\nservices:\n  a:\n    image: /srv/x.tar\n",
    )
    .unwrap();
    set_mode(&file, 0o644);
    let out = env.app(&["unit", "-f", &s(&file)]);
    out.ok();
    assert!(!out.stderr.contains("warning"), "{out}");
    set_mode(&proj, 0o777);
    let out = env.app(&["unit", "-f", &s(&file)]);
    out.ok();
    assert!(out.stderr.contains("written by group or others"), "{out}");
    set_mode(&proj, 0o755);
    sh(&format!("chown 65534 {}", file.display())).ok();
    let out = env.app(&["unit", "-f", &s(&file)]);
    assert!(out.stderr.contains("belongs to uid 65534"), "{out}");
}

/// At boot systemd starts the units of independent services at once, each
/// an `rrun app compose up --no-deps S`: both find the project's network
/// missing and make it; neither may fail for the other having made it.
#[test]
fn units_of_independent_services_start_at_once() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = image(env.root(), "img", &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    fs::write(
        &file,
        format!(
            "name: rt20par\nservices:\n  a:\n    image: {i}\n    command: [\"sleep\", \"1000\"]\n\
             \x20 b:\n    image: {i}\n    command: [\"sleep\", \"1000\"]\n",
            i = img.display()
        ),
    )
    .unwrap();
    let f = s(&file);
    for round in 0..10 {
        let up = |svc: &'static str| {
            let c = env.cmd(&["compose", "-f", &f, "up", "-d", "--no-deps", svc]);
            std::thread::spawn(move || run_timeout(c, Duration::from_secs(90)))
        };
        let (a, b) = (up("a"), up("b"));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        env.app(&["compose", "-f", &f, "down"]).ok();
        assert!(a.success() && b.success(), "round {round}:\n{a}\n{b}");
    }
}
