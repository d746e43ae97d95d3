//! `rrun app`: images run as managed, networked, logged apps — the user
//! journey of the apps issue, each task one command, checked from the host
//! and from inside the app. Every test has its own app root (its own run
//! directory, networks, cgroups) and removes what it made, also on failure.

#[macro_use]
mod common;

use common::app::*;
use common::*;
use serde_json::Value;
use std::fs;
use std::time::Duration;

// ---------------------------------------------------------------------------
// The structure: the app manager is a layer above the runtime
// ---------------------------------------------------------------------------

#[test]
fn no_runtime_module_imports_the_app_manager() {
    let src = repo_dir().join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p != src.join("app") {
                    stack.push(p);
                }
                continue;
            }
            if p == src.join("main.rs") || p == src.join("cli.rs") {
                continue;
            }
            let text = fs::read_to_string(&p).unwrap_or_default();
            if text.contains("crate::app")
                || text.contains("super::app")
                || text.lines().any(|l| l.trim_start().starts_with("use app"))
            {
                offenders.push(p);
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "runtime modules importing the app manager: {offenders:?}"
    );
}

// ---------------------------------------------------------------------------
// The journey
// ---------------------------------------------------------------------------

#[test]
fn published_http_app_answers_on_localhost() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    env.app(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        &s(&web_image()),
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .ok();
    let body = poll(Duration::from_secs(20), || {
        http_get(&format!("http://127.0.0.1:{port}/"))
    })
    .expect("the published port answers on 127.0.0.1");
    assert_eq!(body, "hello from rrun app\n");
    assert_eq!(
        env.runtime_root("web").parent(),
        Some(env.run_dir().as_path()),
        "the tests' cleanup knows the run directory"
    );
    let ls = env.app(&["ls"]);
    ls.ok();
    assert!(
        ls.stdout.contains("web") && ls.stdout.contains("running"),
        "{ls}"
    );
    assert!(ls.stdout.contains(&publish), "ls shows the port: {ls}");
    // Stopped, it no longer answers; started again, it does.
    env.app(&["stop", "web"]).ok();
    assert!(http_get(&format!("http://127.0.0.1:{port}/")).is_none());
    assert_eq!(env.live("web")["lastExit"], "stopped by user");
    env.app(&["start", "web"]).ok();
    poll(Duration::from_secs(20), || {
        http_get(&format!("http://127.0.0.1:{port}/"))
    })
    .expect("answers after start");
}

/// The program killed: the init restarts it with backoff; `ls` counts it
/// and the log shows each start.
#[test]
fn killed_program_restarts_with_backoff() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    env.app(&[
        "run",
        "-d",
        "--name",
        "crashy",
        "--restart",
        "always",
        "--restart-delay",
        "200ms",
        &s(&web_image()),
        "sh",
        "-c",
        "echo starting; exec sleep 1000",
    ])
    .ok();
    env.wait_state("crashy", "running");
    for round in 1..=2u64 {
        let init = env.live("crashy")["pid"].as_i64().unwrap();
        let child = poll(Duration::from_secs(10), || {
            fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next().map(String::from))
        })
        .expect("the program runs under the init");
        sh(&format!("kill -9 {child}")).ok();
        poll(Duration::from_secs(15), || {
            (env.live("crashy")["restarts"].as_u64() == Some(round)).then_some(())
        })
        .unwrap_or_else(|| panic!("restart {round} not counted: {}", env.live("crashy")));
    }
    let logs = poll(Duration::from_secs(10), || {
        let o = env.app(&["logs", "crashy"]);
        (o.stdout.matches("starting").count() >= 3).then_some(o)
    })
    .expect("each start is in the log");
    assert!(logs.stdout.lines().all(|l| l == "starting"), "{logs}");
    assert_eq!(env.live("crashy")["lastExit"], "signal 9");
}

/// The init itself killed from the host: the monitor records it, and the
/// restart policy recreates the container.
#[test]
fn killed_init_is_an_exit_the_policy_restarts() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    env.app(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "on-failure:3",
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    let first = env.wait_state("phoenix", "running")["pid"]
        .as_i64()
        .unwrap();
    sh(&format!("kill -9 {first}")).ok();
    let again = poll(Duration::from_secs(20), || {
        let l = env.live("phoenix");
        (l["state"] == "running" && l["pid"].as_i64().is_some_and(|p| p != first)).then_some(l)
    })
    .expect("recreated after its init was killed");
    assert_eq!(again["restarts"], 1);
    assert_eq!(again["lastExit"], "signal 9");
    let events = env.app(&["events", "phoenix"]);
    assert!(events.stdout.contains(r#""type":"restart""#), "{events}");
}

/// Writes through a rotation: every line is in exactly one file, in order.
#[test]
fn logs_rotate_without_losing_or_duplicating_lines() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let n = 20000;
    env.app(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-max-size",
        "64k",
        "--log-max-files",
        "1000",
        &s(&web_image()),
        "sh",
        "-c",
        &format!("seq 1 {n}; echo done >&2"),
    ])
    .ok();
    poll(Duration::from_secs(60), || {
        (env.live("chatty")["state"] == "exited").then_some(())
    })
    .expect("the app ends");
    let logs = env.app(&["logs", "chatty"]);
    logs.ok();
    let got: Vec<u64> = logs.stdout.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(
        got,
        (1..=n).collect::<Vec<_>>(),
        "every line once, in order"
    );
    assert_eq!(logs.stderr.trim(), "done");
    let files = fs::read_dir(env.root().join("apps/chatty/logs"))
        .unwrap()
        .count();
    assert!(files > 3, "the log rotated ({files} files)");
    // --tail and --timestamps.
    let tail = env.app(&["logs", "--tail", "3", "-t", "chatty"]);
    let lines: Vec<&str> = tail.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{tail}"); // the last 3 lines: 19999, 20000 on stdout, done on stderr
    assert!(
        lines[1].ends_with(" 20000") && lines[1].starts_with("20"),
        "{tail}"
    );
    assert_eq!(env.live("chatty")["lastExit"], "exit 0");
}

/// A detached app's output does not depend on its caller's stdout: the
/// caller's pipe closed, the app keeps writing and running.
#[test]
fn detached_app_survives_its_callers_pipe_closing() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    // The hang guard of every `rrun app` command (Env::app), not the
    // shorter one of a host shell snippet: under TCG a first run takes long.
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg(format!(
        "{} app --app-root {} run -d --name talker {} sh -c 'while true; do echo tick; sleep 0.05; done' | head -c 1",
        rrun_bin().display(),
        s(env.root()),
        s(&web_image())
    ));
    let out = run_timeout(c, Duration::from_secs(90));
    out.ok();
    std::thread::sleep(Duration::from_millis(700));
    let l = env.live("talker");
    assert_eq!(l["state"], "running", "{l}");
    assert_eq!(l["restarts"], 0, "{l}");
    assert!(env.app(&["logs", "talker"]).stdout.matches("tick").count() > 3);
}

/// The init's word outlives its container: an app whose init gave up
/// says so, and each of its program's exits is an event with a time.
#[test]
fn reasons_from_inside_outlive_the_container() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    env.app(&[
        "run",
        "-d",
        "--name",
        "quitter",
        "--restart",
        "on-failure",
        "--restart-delay",
        "50ms",
        "--restart-limit",
        "3/1m",
        &s(&web_image()),
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    let l = poll(Duration::from_secs(30), || {
        let l = env.live("quitter");
        (l["state"] == "exited").then_some(l)
    })
    .expect("the app ends");
    assert_eq!(l["lastExit"], "gave-up", "{l}");
    let events = env.app(&["events", "quitter"]).stdout;
    let exits: Vec<Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "exit" && v["reportedBy"] == "container")
        .collect();
    assert_eq!(exits.len(), 3, "three starts, three exits: {events}");
    assert!(
        exits.iter().all(
            |e| e["reason"] == "exit 3" && e["time"].as_str().is_some_and(|t| t.ends_with('Z'))
        ),
        "{events}"
    );
}

/// A health check that fails: the init kills the program and restarts
/// it (the policy restarts on failure); `ls` and events say "unhealthy".
#[test]
fn unhealthy_app_is_restarted_and_says_why() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    env.app(&[
        "run",
        "-d",
        "--name",
        "sick",
        "--restart",
        "on-failure",
        "--restart-delay",
        "50ms",
        "--health-cmd",
        "echo probe-output; test -e /tmp/well",
        "--health-interval",
        "100ms",
        "--health-retries",
        "1",
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    let l = poll(Duration::from_secs(30), || {
        let l = env.live("sick");
        (l["restarts"].as_u64() >= Some(1)).then_some(l)
    })
    .expect("restarted for being unhealthy");
    assert_eq!(l["lastExit"], "unhealthy", "{l}");
    let events = env.app(&["events", "sick"]).stdout;
    assert!(events.contains(r#""reason":"unhealthy""#), "{events}");
    // Its output is not in the app's log.
    let log = &env.live("sick")["healthLog"];
    assert!(
        log.as_array().is_some_and(|l| l
            .iter()
            .any(|h| h["output"] == "probe-output\n" && h["exit"] == "exit 1")),
        "the probe's result and output are in the state: {log}"
    );
    let logs = env.app(&["logs", "sick"]);
    assert!(
        !logs.stdout.contains("probe-output") && !logs.stderr.contains("probe-output"),
        "{logs}"
    );
}

#[test]
fn memory_limit_is_enforced_and_oom_is_the_reason() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    env.app(&[
        "run",
        "-d",
        "--name",
        "hog",
        "--memory",
        "32m",
        &s(&web_image()),
        "sh",
        "-c",
        "echo go; exec dd if=/dev/zero of=/dev/null bs=200M count=1",
    ])
    .ok();
    let l = poll(Duration::from_secs(30), || {
        let l = env.live("hog");
        (l["state"] == "exited").then_some(l)
    })
    .expect("the app ends");
    assert_eq!(
        l["lastExit"],
        "oom",
        "{l}\n{}\n{}",
        env.app(&["logs", "hog"]),
        env.app(&["events", "hog"])
    );
    assert_eq!(env.app(&["logs", "hog"]).stdout, "go\n");
    let ls = env.app(&["ls", "-a"]);
    assert!(ls.stdout.contains("oom"), "{ls}");
}

#[test]
fn update_changes_limits_live_and_recreates_for_the_rest() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    env.app(&[
        "run",
        "-d",
        "--name",
        "tune",
        "--memory",
        "64m",
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    let pid = env.wait_state("tune", "running")["pid"].as_i64().unwrap();
    env.app(&["update", "tune", "--memory", "96m"]).ok();
    let l = env.live("tune");
    assert_eq!(l["pid"].as_i64(), Some(pid), "resources change live: {l}");
    assert_eq!(l["memoryLimit"].as_i64(), Some(96 << 20));
    let limit = env.exec("tune", &["sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(limit.stdout.trim(), (96u64 << 20).to_string(), "{limit}");
    env.app(&["update", "tune", "-e", "COLOR=blue"]).ok();
    let l = env.wait_state("tune", "running");
    assert_ne!(l["pid"].as_i64(), Some(pid), "an env change recreates");
    assert_eq!(
        env.exec("tune", &["sh", "-c", "echo $COLOR"]).stdout.trim(),
        "blue"
    );
}

/// An upgrade to an image that never gets healthy goes back to the old one.
#[test]
fn upgrade_to_a_broken_image_rolls_back() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let broken = image(env.root(), "broken", &[]);
    env.app(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--health-cmd",
        "cat /ok",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "1s",
        "--health-retries",
        "2",
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    poll(Duration::from_secs(20), || {
        (env.live("svc")["health"] == "healthy").then_some(())
    })
    .expect("v1 gets healthy");
    let before = env.inspect("svc")["state"]["image"].clone();
    let up = env.app(&["run", "-d", "--name", "svc", &s(&broken)]);
    up.failed().stderr_mentions(&["rolled back"]);
    let after = env.inspect("svc");
    assert_eq!(after["state"]["image"], before, "back on the old image");
    assert_eq!(after["settings"]["source"], s(&web_image()));
    poll(Duration::from_secs(20), || {
        (env.live("svc")["health"] == "healthy").then_some(())
    })
    .expect("healthy again on the old image");
    let events = env.app(&["events", "svc"]).stdout;
    assert!(events.contains(r#""type":"rollback""#), "{events}");
    // An upgrade that works keeps the new image.
    let good = image(env.root(), "good", &[("/ok", "ok\n"), ("/version", "2\n")]);
    env.app(&["run", "-d", "--name", "svc", &s(&good)]).ok();
    assert_eq!(env.exec("svc", &["cat", "/version"]).stdout, "2\n");
}

#[test]
fn apps_on_one_network_reach_each_other_by_name() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let net = format!("n{}", std::process::id() % 100000);
    env.app(&["network", "create", &net]).ok();
    env.app(&[
        "run",
        "-d",
        "--name",
        "server",
        "--network",
        &net,
        &s(&web_image()),
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .ok();
    env.app(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        &net,
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    env.wait_state("client", "running");
    let got = poll(Duration::from_secs(20), || {
        let o = env.exec(
            "client",
            &["timeout", "3", "wget", "-q", "-O-", "http://server/"],
        );
        o.success().then_some(o.stdout)
    })
    .expect("client reaches server by name");
    assert_eq!(got, "hello from rrun app\n");
    // The network cannot go while apps use it.
    env.app(&["network", "rm", &net])
        .failed()
        .stderr_is_short_error();
}

/// `rm` takes everything away: processes, mounts, network, files.
#[test]
fn rm_leaves_nothing_behind_also_after_a_crash() {
    if !ensure_root() {
        return;
    }
    let env = Env::exclusive();
    let port = free_port();
    // The default network's bridge stays while the env lives; take the
    // baseline with it up.
    env.app(&[
        "run",
        "-d",
        "--name",
        "base",
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    env.wait_state("base", "running");
    let before = traces(&env);
    for crash in [false, true] {
        let name = if crash { "crashed" } else { "clean" };
        env.app(&[
            "run",
            "-d",
            "--name",
            name,
            "-p",
            &format!("127.0.0.1:{port}:80"),
            &s(&web_image()),
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ])
        .ok();
        let l = env.wait_state(name, "running");
        if crash {
            // kill -9 of everything: monitor first, then the container.
            let monitor = l["monitorPid"].as_i64().unwrap();
            sh(&format!("kill -9 {monitor}; kill -9 {}", l["pid"])).ok();
            std::thread::sleep(Duration::from_millis(300));
        }
        env.app(&["rm", "-f", name]).ok();
        assert!(
            !env.root().join("apps").join(name).exists(),
            "{name}: app dir gone"
        );
        let after = traces(&env);
        assert_eq!(before, after, "{name}: the host is as before");
        assert!(http_get(&format!("http://127.0.0.1:{port}/")).is_none());
    }
    let run_dir = env.runtime_root("base").parent().unwrap().to_path_buf();
    env.app(&["rm", "-f", "base"]).ok();
    let leases = sh(&format!(
        "grep -rl -- '-base' {} 2>/dev/null || true",
        s(&run_dir.join("cni"))
    ));
    assert!(
        leases.stdout.trim().is_empty(),
        "no IPAM lease of a removed app: {leases}"
    );
    // The last app gone, no cgroup of this root is left in any hierarchy.
    let group = env
        .run_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let left = sh(&format!(
        "find /sys/fs/cgroup -type d -name '{group}' 2>/dev/null"
    ));
    assert!(left.stdout.trim().is_empty(), "cgroups left: {left}");
}

/// `rrun app run` killed (SIGKILL) at any step: `rm -f` takes away
/// whatever it had made, and nothing of it is left on the host.
#[test]
fn a_run_killed_at_any_step_is_cleaned_by_rm() {
    if !ensure_root() {
        return;
    }
    let env = Env::exclusive();
    env.app(&[
        "run",
        "-d",
        "--name",
        "keep",
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    env.wait_state("keep", "running");
    let before = traces(&env);
    let port = free_port();
    for (i, delay) in [0u64, 5, 15, 30, 60, 120, 250, 500].into_iter().enumerate() {
        let name = format!("k{i}");
        let publish = format!("127.0.0.1:{port}:80");
        let mut bg = Background::spawn(env.cmd(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            &publish,
            &s(&web_image()),
            "sleep",
            "1000",
        ]));
        std::thread::sleep(Duration::from_millis(delay));
        let _ = bg.child.kill();
        let _ = bg.child.wait();
        let out = env.app(&["rm", "-f", &name]);
        assert!(
            out.success() || out.stderr.contains("no app named"),
            "after a kill at {delay} ms: {out}"
        );
        assert!(
            !env.root().join("apps").join(&name).exists(),
            "{name}: app dir gone"
        );
        assert_eq!(
            traces(&env),
            before,
            "{name}: killed at {delay} ms, removed: the host is as before"
        );
    }
}

#[test]
fn fifty_apps_started_and_removed_in_parallel_leave_nothing() {
    if !ensure_root() {
        return;
    }
    let env = Env::exclusive();
    env.app(&[
        "run",
        "-d",
        "--name",
        "anchor",
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    env.wait_state("anchor", "running");
    let before = traces(&env);
    let img = s(&web_image());
    // 50 as the issue asks; fewer where the machine is an emulator
    // (the systemd VM's suite sets it).
    let n: usize = std::env::var("RRUN_APP_TEST_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    std::thread::scope(|sc| {
        for i in 0..n {
            let env = &env;
            let img = &img;
            sc.spawn(move || {
                env.app(&[
                    "run",
                    "-d",
                    "--name",
                    &format!("p{i}"),
                    img,
                    "sleep",
                    "1000",
                ])
                .ok();
            });
        }
    });
    let ls = env.app(&["ls", "--format", "json"]);
    let running: Value = serde_json::from_str(&ls.stdout).unwrap();
    assert_eq!(running.as_array().unwrap().len(), n + 1, "{ls}");
    std::thread::scope(|sc| {
        for i in 0..n {
            let env = &env;
            sc.spawn(move || {
                env.app(&["rm", "-f", &format!("p{i}")]).ok();
            });
        }
    });
    assert_eq!(env.names(), vec!["anchor".to_string()]);
    assert_eq!(traces(&env), before);
}

#[test]
fn foreground_run_shows_output_and_returns_the_status() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let out = env.app(&[
        "run",
        "--name",
        "fg",
        &s(&web_image()),
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.code, Some(7), "{out}");
    assert_eq!(out.stdout, "out\n", "{out}");
    assert_eq!(out.stderr, "err\n", "{out}");
    // SIGINT stops it.
    let mut c = env.cmd(&[
        "run",
        "--name",
        "fg2",
        &s(&web_image()),
        "sh",
        "-c",
        "echo up; exec sleep 1000",
    ]);
    let mut bg = Background::spawn({
        c.stdin(std::process::Stdio::null());
        c
    });
    env.wait_state("fg2", "running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bg.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = wait_child(&mut bg.child, Duration::from_secs(30), "foreground run");
    assert!(st.code().is_some(), "ends by itself after SIGINT: {st:?}");
    assert_eq!(env.live("fg2")["lastExit"], "stopped by user");
    // SIGHUP (its terminal gone) ends the command, not the app.
    let mut c = env.cmd(&["run", "--name", "fg3", &s(&web_image()), "sleep", "1000"]);
    let mut bg = Background::spawn({
        c.stdin(std::process::Stdio::null());
        c
    });
    env.wait_state("fg3", "running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bg.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let st = wait_child(&mut bg.child, Duration::from_secs(30), "foreground run");
    assert_eq!(st.code(), Some(0), "ends by itself after SIGHUP: {st:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.live("fg3")["state"], "running", "the app keeps running");
}

// ---------------------------------------------------------------------------
// Bad input: one line, non-zero, nothing left
// ---------------------------------------------------------------------------

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = s(&web_image());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    env.app(&["run", "-d", "--name", "taken", &img, "sleep", "1000"])
        .ok();
    let busy_word = busy_port.as_str();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["/nonexistent/image.tar".into()],
            vec!["/nonexistent/image.tar"],
        ),
        (
            vec![
                "-p".into(),
                format!("127.0.0.1:{busy_port}:80"),
                img.clone(),
            ],
            vec![busy_word],
        ),
        (
            vec!["-p".into(), "70000:80".into(), img.clone()],
            vec!["70000"],
        ),
        (
            vec!["-v".into(), "/nonexistent/src:/data".into(), img.clone()],
            vec!["/nonexistent/src"],
        ),
        (
            vec![
                "--health-cmd".into(),
                "nosuchprobe --ok".into(),
                img.clone(),
            ],
            vec!["nosuchprobe"],
        ),
        (
            vec![
                "--health-cmd".into(),
                r#"["CMD","/bin/nosuchprobe"]"#.into(),
                img.clone(),
            ],
            vec!["nosuchprobe"],
        ),
        (
            vec!["--network".into(), "nosuchnet".into(), img.clone()],
            vec!["nosuchnet"],
        ),
        (
            vec!["--restart".into(), "sometimes".into(), img.clone()],
            vec!["sometimes"],
        ),
        (
            vec!["--memory".into(), "lots".into(), img.clone()],
            vec!["lots"],
        ),
    ];
    for (i, (args, words)) in cases.iter().enumerate() {
        let name = format!("bad{i}");
        let mut full = vec!["run", "-d", "--name", &name];
        full.extend(args.iter().map(String::as_str));
        full.extend(["sleep", "1"]);
        let out = env.app(&full);
        out.failed().stderr_is_short_error().stderr_mentions(words);
        assert_eq!(out.stderr.lines().count(), 1, "one line: {out}");
        assert!(
            !env.root().join("apps").join(&name).exists(),
            "nothing left: {out}"
        );
    }
    // A name taken.
    let out = env.app(&[
        "run", "-d", "--name", "taken", "-e", "X=1", "--memory", "bad", &img,
    ]);
    out.failed().stderr_mentions(&["bad"]);
    // A CNI plugin missing.
    let mut c = env.cmd(&["run", "-d", "--name", "nocni", &img, "sleep", "1"]);
    c.env("RRUN_CNI_PATH", env.root().join("no-plugins"));
    let out = run_timeout(c, TIMEOUT);
    out.failed().stderr_mentions(&["bridge", "plugin"]);
    assert!(
        !env.root().join("apps/nocni").exists(),
        "nothing left: {out}"
    );
    assert_eq!(env.names(), vec!["taken".to_string()]);
    drop(busy);
}

/// Nothing of the monitor (its fds, its log path) is visible inside.
#[test]
fn the_app_sees_only_pipes_and_its_own_files() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    env.app(&[
        "run",
        "-d",
        "--name",
        "quiet",
        &s(&web_image()),
        "sleep",
        "1000",
    ])
    .ok();
    env.wait_state("quiet", "running");
    let fds = env.exec(
        "quiet",
        &[
            "sh",
            "-c",
            "ls -l /proc/1/fd/ /proc/$(cat /proc/1/task/1/children | cut -d' ' -f1)/fd/",
        ],
    );
    fds.ok();
    assert!(
        !fds.stdout.contains(&s(env.root())),
        "no host path among the fds: {fds}"
    );
    assert!(
        fds.stdout.contains("pipe:"),
        "stdout/stderr are pipes: {fds}"
    );
    let env_out = env.exec(
        "quiet",
        &[
            "sh",
            "-c",
            "cat /proc/1/environ | tr '\\0' '\\n'; cat /etc/hostname",
        ],
    );
    assert!(!env_out.stdout.contains(&s(env.root())), "{env_out}");
    assert!(
        env_out.stdout.contains("quiet"),
        "hostname is the app's name: {env_out}"
    );
}

/// A unit's $NOTIFY_SOCKET in the caller's environment is `rrun app`'s to
/// use (readiness = health), never the app's container's: the runtime's
/// socket relay would otherwise hold the app's start until its program
/// says READY, and give the program a socket of the caller's. Held twice:
/// the monitor's helper gets only PATH and RRUN_* variables, and the
/// in-process runtime calls pass an empty --notify-socket.
#[test]
fn an_inherited_notify_socket_never_reaches_the_apps_container() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let host = std::os::unix::net::UnixDatagram::bind(dir.path().join("notify.sock")).unwrap();
    host.set_nonblocking(true).unwrap();
    let mut c = env.cmd(&[
        "run",
        "-d",
        "--name",
        "quiet",
        &s(&web_image()),
        "sleep",
        "600",
    ]);
    c.env("NOTIFY_SOCKET", dir.path().join("notify.sock"));
    run_timeout(c, Duration::from_secs(60)).ok();
    env.wait_state("quiet", "running");
    let o = env.exec(
        "quiet",
        &[
            "sh",
            "-c",
            "grep -c ' /run/notify ' /proc/self/mountinfo; tr '\\0' '\\n' </proc/1/environ | grep -c NOTIFY_SOCKET; true",
        ],
    );
    o.ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"],
        "the app's container got the caller's notify socket: {o}"
    );
    let mut buf = [0u8; 512];
    assert!(
        host.recv(&mut buf).is_err(),
        "the caller's socket was told something by a plain `run -d`"
    );
    env.app(&["rm", "-f", "quiet"]).ok();
}

/// `rrun app restart` counts, as the status page's button and PM2's
/// restart do: the count `ls` shows goes up by one each time.
#[test]
fn restart_by_user_counts_as_a_restart() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    env.app(&[
        "run",
        "-d",
        "--name",
        "counted",
        &s(&web_image()),
        "sleep",
        "600",
    ])
    .ok();
    env.wait_state("counted", "running");
    let restarts = || {
        let out = env.app(&["ls", "--format", "json"]);
        out.ok();
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        v[0]["restarts"].as_u64().unwrap()
    };
    assert_eq!(restarts(), 0);
    let pid = env.live("counted")["pid"].clone();
    env.app(&["restart", "-t", "1", "counted"]).ok();
    env.wait_state("counted", "running");
    assert_eq!(restarts(), 1);
    assert_ne!(env.live("counted")["pid"], pid, "restart kept the old init");
    env.app(&["restart", "-t", "1", "counted"]).ok();
    assert_eq!(restarts(), 2);
    let ev = env.app(&["events", "counted"]);
    assert_eq!(
        ev.stdout.matches("restarted by user").count(),
        2,
        "each restart is an event: {ev}"
    );
    env.app(&["rm", "-f", "counted"]).ok();
}
