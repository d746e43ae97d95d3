//! `rrun app serve`: the status page, /metrics and /api, over HTTP as a
//! client sees them (a plain TCP client: every header is the test's
//! choice), and in a real browser (headless Chromium driven by
//! tests/serve_browser.py). Every test has its own app root and its own
//! server on a free port; the server is killed when the test ends.

#[macro_use]
mod common;

use common::app::*;
use common::*;
use serde_json::Value;
use std::fs;
use std::io::{Read, Seek, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Debian's Python, whose packages (python3-prometheus-client,
/// python3-selenium) the tests use, whatever else is first on PATH.
const PYTHON: &str = "/usr/bin/python3";

/// A running `rrun app serve`, killed on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
    /// The token, when the server printed it.
    token: String,
    out: fs::File,
}

impl Serve {
    fn start(env: &Env, extra: &[&str]) -> Serve {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Serve::start_args(env, &args)
    }

    fn start_args(env: &Env, args: &[&str]) -> Serve {
        // A file, not a pipe: the monitors the buttons start must not hold
        // the test's pipe open.
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let child = env
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err)
            .spawn()
            .expect("spawn rrun app serve");
        let mut s = Serve {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            token: String::new(),
            out,
        };
        let text = poll(Duration::from_secs(20), || {
            let t = s.stdout();
            t.contains("token").then_some(t)
        })
        .unwrap_or_else(|| panic!("serve printed no address: {:?}", s.stdout()));
        let url = text
            .lines()
            .find_map(|l| l.strip_prefix("listening on http://"))
            .expect("the address line");
        s.addr = url.trim_end_matches('/').parse().expect("ADDR:PORT");
        s.token = text
            .lines()
            .find_map(|l| l.strip_prefix("token: "))
            .unwrap_or("")
            .to_string();
        s
    }

    fn stdout(&mut self) -> String {
        let mut t = String::new();
        self.out.rewind().unwrap();
        self.out.read_to_string(&mut t).unwrap();
        t
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A request with exactly these headers (Host added unless given).
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        request(self.addr, method, path, headers, b"")
    }

    fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &[])
    }

    fn post(&self, path: &str, token: Option<&str>) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h = vec![];
        if let Some(a) = &auth {
            h.push(("Authorization", a.as_str()));
        }
        self.req("POST", path, &h)
    }

    fn apps(&self) -> Vec<Value> {
        let r = self.get("/api/apps");
        assert_eq!(r.status, 200, "{r:?}");
        serde_json::from_str::<Value>(&r.body)
            .expect("/api/apps is JSON")
            .as_array()
            .cloned()
            .expect("an array")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: String,
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect to serve");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {raw:?}"));
    Resp {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// `rrun app ls --all --format json`, by name.
fn ls(env: &Env) -> std::collections::BTreeMap<String, Value> {
    let out = env.app(&["ls", "--all", "--format", "json"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a.clone()))
        .collect()
}

/// An app that runs until stopped, printing a line a second.
fn run_ticker(env: &Env, img: &Path, name: &str) {
    env.app(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        &s(img),
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done",
    ])
    .ok();
}

/// An app that ends at once with status 3.
fn run_quitter(env: &Env, img: &Path, name: &str) {
    env.app(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "--restart",
        "no",
        &s(img),
        "sh",
        "-c",
        "echo bye; exit 3",
    ])
    .ok();
    env.wait_state(name, "exited");
}

fn img(env: &Env) -> std::path::PathBuf {
    image(env.root(), "serve", &[])
}

/// The samples of a Prometheus text exposition as Prometheus' own Python
/// client parses it: (name, labels, value). None when that parser is not
/// installed (python3-prometheus-client).
fn prometheus_parse(text: &str) -> Option<Vec<(String, Value, f64)>> {
    const PY: &str = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families as p\n\
        out = []\n\
        for f in p(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       out.append([s.name, s.labels, s.value, f.type])\n\
        print(json.dumps(out))\n";
    if !sh(&format!("{PYTHON} -c 'import prometheus_client.parser'")).success() {
        return None;
    }
    let mut c = Command::new(PYTHON)
        .arg("-c")
        .arg(PY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s[0].as_str().unwrap().to_string(),
                    s[1].clone(),
                    s[2].as_f64().unwrap(),
                )
            })
            .collect(),
    )
}

fn sample(samples: &[(String, Value, f64)], name: &str, app: &str) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l["app"] == app && l.get("state").is_none())
        .map(|(_, _, v)| *v)
}

// ---------------------------------------------------------------------------

#[test]
fn api_lists_what_ls_lists_and_metrics_parse() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = img(&env);
    run_ticker(&env, &img, "svticker");
    run_quitter(&env, &img, "svquit");
    let srv = Serve::start(&env, &[]);
    let apps = srv.apps();
    let cli = ls(&env);
    assert_eq!(apps.len(), 2, "{apps:?}");
    for a in &apps {
        let name = a["name"].as_str().unwrap();
        let c = &cli[name];
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(a), keys(c), "the same fields as ls --format json");
        for k in [
            "state",
            "health",
            "restarts",
            "image",
            "ports",
            "lastExit",
            "exitStatus",
        ] {
            assert_eq!(a[k], c[k], "{name}.{k}");
        }
    }
    let by = |n: &str| apps.iter().find(|a| a["name"] == n).unwrap().clone();
    assert_eq!(by("svticker")["state"], "running");
    assert_eq!(by("svquit")["state"], "exited");
    assert_eq!(by("svquit")["exitStatus"], 3);

    let m = srv.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.head.contains("text/plain; version=0.0.4"), "{}", m.head);
    let Some(samples) = prometheus_parse(&m.body) else {
        skip("python3-prometheus-client is not installed: /metrics not parsed");
        return;
    };
    assert_eq!(sample(&samples, "rrun_app_up", "svticker"), Some(1.0));
    assert_eq!(sample(&samples, "rrun_app_up", "svquit"), Some(0.0));
    assert_eq!(
        sample(&samples, "rrun_app_last_exit_code", "svquit"),
        Some(3.0)
    );
    assert_eq!(
        sample(&samples, "rrun_app_restarts_total", "svticker"),
        Some(0.0)
    );
    assert_eq!(
        sample(&samples, "rrun_app_oom_kills_total", "svticker"),
        Some(0.0)
    );
    assert!(sample(&samples, "rrun_app_cpu_seconds_total", "svticker").unwrap() > 0.0);
    assert!(sample(&samples, "rrun_app_memory_bytes", "svticker").unwrap() > 0.0);
    assert_eq!(sample(&samples, "rrun_app_memory_bytes", "svquit"), None);
    let health: Vec<_> = samples
        .iter()
        .filter(|(n, l, v)| n == "rrun_app_health" && l["app"] == "svticker" && *v == 1.0)
        .map(|(_, l, _)| l["state"].clone())
        .collect();
    assert_eq!(health, ["none"]);
}

#[test]
fn state_changes_need_the_token_and_the_same_origin() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = img(&env);
    run_ticker(&env, &img, "svauth");
    let srv = Serve::start(&env, &[]);
    assert_eq!(srv.token.len(), 64, "a random token is printed");
    let before = ls(&env)["svauth"].clone();
    let events = || fs::read_to_string(env.root().join("apps/svauth/events.jsonl")).unwrap();
    let events_before = events();
    let bad = format!("{}x", srv.token);
    let refused = [
        (srv.post("/api/apps/svauth/stop", None), 401),
        (srv.post("/api/apps/svauth/stop", Some(&bad)), 401),
        (srv.post("/api/apps/svauth/stop", Some("")), 401),
        (
            srv.req(
                "POST",
                "/api/apps/svauth/stop",
                &[("Authorization", &format!("Basic {}", srv.token))],
            ),
            401,
        ),
        (
            srv.req(
                "POST",
                "/api/apps/svauth/stop",
                &[
                    ("Authorization", &format!("Bearer {}", srv.token)),
                    ("Origin", "http://evil.example"),
                ],
            ),
            403,
        ),
        (
            srv.req(
                "POST",
                "/api/apps/svauth/restart",
                &[
                    ("Authorization", &format!("Bearer {}", srv.token)),
                    ("Sec-Fetch-Site", "cross-site"),
                ],
            ),
            403,
        ),
        (srv.get("/api/apps/svauth/stop"), 405),
        (srv.req("PUT", "/api/apps", &[]), 405),
        (
            srv.post("/api/apps/..%2F..%2Fetc/stop", Some(&srv.token)),
            400,
        ),
        (srv.post("/api/apps/nosuchapp/stop", Some(&srv.token)), 404),
        (srv.post("/api/apps/svauth/delete", Some(&srv.token)), 404),
    ];
    for (r, want) in &refused {
        assert_eq!(r.status, *want, "{r:?}");
    }
    assert!(refused[0].0.head.contains("WWW-Authenticate: Bearer"));
    // Nothing changed: the same container, the same count, no event.
    let after = ls(&env)["svauth"].clone();
    for k in ["state", "pid", "monitorPid", "restarts", "startedAt"] {
        assert_eq!(before[k], after[k], "{k} changed by a refused request");
    }
    assert_eq!(events(), events_before);

    // With the token: stop, start, restart (counted).
    let ok = srv.post("/api/apps/svauth/stop", Some(&srv.token));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ls(&env)["svauth"]["state"], "exited");
    let ok = srv.req(
        "POST",
        "/api/apps/svauth/start",
        &[
            ("Authorization", &format!("Bearer {}", srv.token)),
            ("Origin", &format!("http://{}", srv.addr)),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    env.wait_state("svauth", "running");
    let r0 = ls(&env)["svauth"]["restarts"].as_u64().unwrap();
    let ok = srv.post("/api/apps/svauth/restart", Some(&srv.token));
    assert_eq!(ok.status, 200, "{ok:?}");
    let now = ls(&env)["svauth"].clone();
    assert_eq!(now["restarts"].as_u64(), Some(r0 + 1), "{now}");
    assert_eq!(now["state"], "running");
    assert_ne!(now["pid"], after["pid"]);
    // The token was printed once, at the start, never again.
    let mut srv = srv;
    let token = srv.token.clone();
    assert_eq!(
        srv.stdout().matches(&token).count(),
        2,
        "token line and URL"
    );
}

#[test]
fn host_header_guards_a_loopback_server() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let srv = Serve::start(&env, &[]);
    let port = srv.addr.port().to_string();
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let h = format!("{host}:{port}");
        assert_eq!(
            srv.req("GET", "/api/apps", &[("Host", &h)]).status,
            200,
            "{h}"
        );
    }
    for host in [
        "evil.example",
        "rebind.example:1234",
        "127.0.0.1.evil.example",
    ] {
        let r = srv.req("GET", "/api/apps", &[("Host", host)]);
        assert_eq!(r.status, 421, "{host}");
        let r = srv.req(
            "POST",
            "/api/apps/x/stop",
            &[
                ("Host", host),
                ("Authorization", &format!("Bearer {}", srv.token)),
            ],
        );
        assert_eq!(r.status, 421, "{host}");
    }
    // No Host at all (HTTP/1.0).
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(b"GET /api/apps HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 421 "), "{out}");
    // The page's headers: nothing from elsewhere, never framed.
    let page = srv.get("/");
    assert_eq!(page.status, 200);
    for h in [
        "Content-Security-Policy: default-src 'self'",
        "X-Frame-Options: DENY",
        "X-Content-Type-Options: nosniff",
    ] {
        assert!(page.head.contains(h), "{h}: {}", page.head);
    }
    assert!(page.body.contains("No apps"));
    assert_eq!(srv.get("/../../etc/passwd").status, 404);
    assert_eq!(srv.get("/api/apps/..%2F..%2Fetc%2Fpasswd/logs").status, 400);
    assert_eq!(srv.get("/app.js").status, 200);
    assert_eq!(srv.get("/app.css").status, 200);
    // Malformed and oversized requests get an answer, not a hang.
    let big = "a".repeat(20_000);
    assert_eq!(srv.req("GET", "/", &[("X-Big", &big)]).status, 431);
}

#[test]
fn a_hundred_clients_at_once() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = img(&env);
    run_ticker(&env, &img, "svmany");
    let srv = Serve::start(&env, &[]);
    let addr = srv.addr;
    let paths = ["/api/apps", "/", "/metrics", "/api/apps/svmany/logs?n=5"];
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let path = paths[i % paths.len()];
            std::thread::spawn(move || request(addr, "GET", path, &[], b""))
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for t in threads {
        let r = t.join().expect("client thread");
        assert!(r.body.contains("svmany"), "{r:?}");
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&100), "{statuses:?}");
    // Clients that leave before the answer, resetting the connection:
    // the server goes on. (Whether a write then meets EPIPE, which would
    // raise SIGPIPE, is the kernel's timing: the server ignores SIGPIPE
    // whatever this test manages to provoke.)
    let rude: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .unwrap();
                // SO_LINGER 0: close() sends a reset.
                let l = libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &l).unwrap();
            })
        })
        .collect();
    for t in rude {
        t.join().unwrap();
    }
    // Still answering after.
    assert_eq!(srv.apps().len(), 1);
    let mut srv = srv;
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "the server died: {}",
        srv.stdout()
    );
}

#[test]
fn an_app_removed_while_watched() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let img = img(&env);
    run_ticker(&env, &img, "svgone");
    run_ticker(&env, &img, "svstays");
    let srv = Serve::start(&env, &[]);
    // The page is open: its log follower asks.
    let logs = poll(Duration::from_secs(20), || {
        let r = srv.get("/api/apps/svgone/logs");
        let v: Value = serde_json::from_str(&r.body).ok()?;
        (!v["lines"].as_array()?.is_empty()).then_some(v)
    })
    .expect("the app's log lines");
    assert!(
        logs["lines"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("tick")
    );
    assert_eq!(srv.get("/").status, 200);
    env.app(&["rm", "-f", "svgone"]).ok();
    let names: Vec<_> = srv.apps().iter().map(|a| a["name"].clone()).collect();
    assert_eq!(names, ["svstays"]);
    let page = srv.get("/");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("svgone") && page.body.contains("svstays"));
    let m = srv.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(!m.body.contains("svgone"));
    assert_eq!(srv.get("/api/apps/svgone/logs").status, 404);
    assert_eq!(
        srv.post("/api/apps/svgone/restart", Some(&srv.token))
            .status,
        404
    );
}

#[test]
fn another_address_needs_the_token_to_read() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    let mut srv = Serve::start_args(
        &env,
        &["serve", "--listen", "0.0.0.0:0", "--token-file", &s(&tf)],
    );
    let token = fs::read_to_string(&tf).unwrap().trim().to_string();
    assert_eq!(token.len(), 64);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&tf).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(
        !srv.stdout().contains(&token),
        "a token in a file is not printed"
    );
    let addr: SocketAddr = format!("127.0.0.1:{}", srv.addr.port()).parse().unwrap();
    srv.addr = addr;
    assert_eq!(srv.get("/api/apps").status, 401);
    assert_eq!(srv.get("/metrics").status, 401);
    assert_eq!(srv.get("/api/apps/x/logs").status, 401);
    assert_eq!(srv.get("/app.js").status, 200, "the login page's script");
    let login = srv.get("/");
    assert_eq!(login.status, 401);
    assert!(login.body.contains("action=\"/login\""));
    let bearer = format!("Bearer {token}");
    assert_eq!(
        srv.req("GET", "/api/apps", &[("Authorization", &bearer)])
            .status,
        200
    );
    let wrong = request(addr, "POST", "/login", &[], b"token=nope");
    assert_eq!(wrong.status, 401);
    assert!(!wrong.head.contains("Set-Cookie"));
    let ok = request(
        addr,
        "POST",
        "/login",
        &[],
        format!("token={token}").as_bytes(),
    );
    assert_eq!(ok.status, 303, "{ok:?}");
    let cookie = ok
        .head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .expect("a cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let c = cookie.split(';').next().unwrap();
    assert_eq!(srv.req("GET", "/", &[("Cookie", c)]).status, 200);
    // The same file again: the same token, read.
    drop(srv);
    let srv = Serve::start_args(
        &env,
        &["serve", "--listen", "127.0.0.1:0", "--token-file", &s(&tf)],
    );
    assert_eq!(
        srv.post("/api/apps/none/stop", Some(&token)).status,
        404,
        "the file's token is accepted"
    );
}

#[test]
fn bad_flags_are_one_line_errors() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let out = env.app(&["serve", "--listen", "nonsense"]);
    out.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["--listen"]);
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    fs::write(&tf, "0123456789abcdef0123\n").unwrap();
    set_mode(&tf, 0o644);
    let out = env.app(&["serve", "--listen", "127.0.0.1:0", "--token-file", &s(&tf)]);
    out.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["chmod 600"]);
}

/// The page in headless Chromium: both apps listed with their states, a
/// restart from its button counted by `rrun app ls`, a log line written
/// after the page opened shown, a request without the token refused; a
/// screenshot in target/app-serve.png.
#[test]
fn the_page_in_a_browser() {
    if !ensure_root() {
        return;
    }
    let have = sh(&format!(
        "command -v chromium && command -v chromedriver && {PYTHON} -c 'import selenium'"
    ));
    require!(
        have.success(),
        "needs chromium, chromium-driver and python3-selenium"
    );
    let env = Env::new();
    let img = img(&env);
    // Prints what appears in /tmp/say: the test writes there after the
    // page is open, and expects the line in the page's log panel.
    env.app(&[
        "run",
        "-d",
        "--name",
        "svweb",
        "--network",
        "none",
        "--health-cmd",
        "echo all-good",
        "--health-interval",
        "1s",
        &s(&img),
        "sh",
        "-c",
        "echo started; while true; do if [ -f /tmp/say ]; then cat /tmp/say; rm -f /tmp/say; fi; sleep 0.2; done",
    ])
    .ok();
    run_quitter(&env, &img, "svdone");
    let srv = Serve::start(&env, &[]);
    // target/ itself (target_dir() is the build target's directory).
    let shot = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("target"))
        .join("app-serve.png");
    let _ = fs::remove_file(&shot);
    let mut exec = Command::new(PYTHON);
    exec.arg(repo_dir().join("tests/serve_browser.py"))
        .arg("--url")
        .arg(srv.url())
        .arg("--token")
        .arg(&srv.token)
        .arg("--rrun")
        .arg(rrun_bin())
        .arg("--root")
        .arg(env.root())
        .arg("--runtime-root")
        .arg(env.runtime_root("svweb"))
        .arg("--screenshot")
        .arg(&shot);
    let out = run_timeout(exec, Duration::from_secs(240));
    assert!(out.success(), "the browser test failed:\n{out}");
    assert!(shot.exists(), "a screenshot in {}", shot.display());
}

#[test]
fn sigterm_ends_it_cleanly() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let mut srv = Serve::start(&env, &[]);
    assert_eq!(srv.get("/api/apps").status, 200);
    let pid = nix::unistd::Pid::from_raw(srv.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = wait_child(&mut srv.child, Duration::from_secs(30), "rrun app serve");
    assert_eq!(st.code(), Some(0), "{st:?}");
    assert!(
        TcpStream::connect(srv.addr).is_err(),
        "nothing listens after"
    );
}

/// On loopback the server's own user reads without the token; any other
/// local user needs it, as on any other address: the apps' logs and
/// health output are root's (the app root is 0700), not every user's.
#[test]
fn another_local_user_needs_the_token_to_read() {
    if !ensure_root() {
        return;
    }
    if !have_cmd("curl") || !have_cmd("setpriv") {
        skip("curl or setpriv missing: no request as another user");
        return;
    }
    let env = Env::new();
    let srv = Serve::start(&env, &[]);
    assert_eq!(
        srv.get("/api/apps").status,
        200,
        "the server's own user reads"
    );
    let as_nobody = |path: &str, token: Option<&str>| -> String {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "curl",
            "-s",
        ])
        .args(["-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(t) = token {
            c.arg("-H").arg(format!("Authorization: Bearer {t}"));
        }
        c.arg(format!("http://{}{path}", srv.addr));
        run_timeout(c, Duration::from_secs(30)).stdout
    };
    for path in ["/", "/api/apps", "/metrics", "/api/apps/x/logs"] {
        assert_eq!(as_nobody(path, None), "401", "{path} read by another user");
    }
    assert_eq!(
        as_nobody("/api/apps", Some("wrong-token-0123456789")),
        "401"
    );
    assert_eq!(as_nobody("/api/apps", Some(&srv.token)), "200");
    assert_eq!(as_nobody("/app.js", None), "200", "the login page's script");
}

/// Slow clients (slowloris: a byte of the request head now and then, never
/// the end of it) hold a worker for a bounded time only: with more of them
/// than there are workers, a normal request is still answered.
#[test]
fn slow_clients_cannot_hold_every_worker() {
    let env = Env::new();
    let srv = Serve::start(&env, &[]);
    let addr = srv.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Half of them never end their head; the other half send one too big
    // (refused) and then go on sending while the server drains them.
    let mut big = b"GET / HTTP/1.1\r\nHost: localhost\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20 << 10));
    let mut slow: Vec<TcpStream> = (0..40)
        .map(|i| {
            let mut s = TcpStream::connect(addr).expect("connect");
            if i % 2 == 0 {
                s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
                    .unwrap();
            } else {
                s.write_all(&big).unwrap();
            }
            s
        })
        .collect();
    let dripper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for s in &mut slow {
                    let _ = s.write_all(b"X");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    // request() waits up to 60 s for the answer.
    let r = srv.get("/api/apps");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    dripper.join().unwrap();
    assert_eq!(r.status, 200, "{r:?}");
}

/// A token file another local user made (in /tmp, before the server was
/// first started) holds a token that user knows, however private its mode:
/// the server refuses it rather than take their token as its own.
#[test]
fn a_token_file_of_another_user_is_refused() {
    if !ensure_root() {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    fs::write(&tf, "known-to-nobody-0123456789\n").unwrap();
    set_mode(&tf, 0o600);
    sh(&format!("chown 65534:65534 {}", tf.display())).ok();
    let out = env.app(&["serve", "--listen", "127.0.0.1:0", "--token-file", &s(&tf)]);
    out.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["another user"]);
}
