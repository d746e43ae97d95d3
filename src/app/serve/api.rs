//! The routes: who may ask what (the Host check, the token, the CSRF
//! check: auth.rs decides, this applies), and the answers, read from
//! rrun's state at each request. An app name from a request is checked
//! (settings::check_name) before any path is made of it; the only files
//! read on a client's behalf are the logs of the apps `ls` lists.
//!
//! | route                                  | answer                          |
//! |----------------------------------------|---------------------------------|
//! | GET /                                  | the page (page.rs)              |
//! | GET /app.js, /app.css                  | its script and style            |
//! | GET /metrics                           | Prometheus text (metrics.rs)    |
//! | GET /api/apps                          | `ls --all --format json`'s rows |
//! | GET /api/apps/NAME/logs?after=T&n=N    | {"lines": [...]} after time T   |
//! | POST /api/apps/NAME/{restart,stop,start} | token + CSRF check          |
//! | POST /login                            | non-loopback only: the cookie   |

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::auth;
use super::http::{Request, Response};
use super::logtail;
use super::metrics::{self, Counters};
use super::page;
use super::sampler::Sampler;
use crate::app::paths::Paths;
use crate::app::state::{self, App};
use crate::app::{lifecycle, runtime, settings, show};

/// State-changing requests served at once; more get 503 (each can take a
/// stop's whole grace period, and must not hold every worker).
const MAX_ACTIONS: usize = 4;
/// The most log lines one request returns.
const MAX_LOG_LINES: usize = 500;

pub struct Ctx {
    pub paths: Paths,
    pub token: String,
    /// Bound to loopback: the Host header must name it; reading needs no
    /// token.
    pub loopback: bool,
    pub sampler: Sampler,
    /// Actions under way (the server waits for them before it exits).
    pub actions: AtomicUsize,
    /// The server is ending: no new action starts.
    pub stopping: AtomicBool,
}

impl Ctx {
    pub fn new(paths: Paths, token: String, loopback: bool) -> Ctx {
        Ctx {
            paths,
            token,
            loopback,
            sampler: Sampler::default(),
            actions: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    fn token_ok(&self, t: Option<&str>) -> bool {
        t.is_some_and(|t| auth::constant_time_eq(t.as_bytes(), self.token.as_bytes()))
    }
}

fn unauthorized() -> Response {
    Response::text(401, "a valid token is needed (Authorization: Bearer TOKEN)")
        .with("WWW-Authenticate", "Bearer realm=\"rrun\"")
}

/// Answers one request.
pub fn handle(ctx: &Ctx, req: &Request) -> Response {
    if ctx.loopback && !auth::loopback_host(req) {
        return Response::text(
            421,
            "this server answers only to Host localhost, 127.0.0.1 or [::1]",
        );
    }
    let segs: Vec<&str> = req.path.split('/').skip(1).collect();
    let read = matches!(req.method.as_str(), "GET" | "HEAD");
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["login"]) if !ctx.loopback => return login(ctx, req),
        ("POST", ["api", "apps", name, what]) => return action(ctx, req, name, what),
        (_, ["api", "apps", _, "restart" | "stop" | "start"]) => {
            return Response::text(405, "use POST").with("Allow", "POST");
        }
        _ if !read => {
            return Response::text(405, "only GET and HEAD here").with("Allow", "GET, HEAD");
        }
        _ => {}
    }
    if !ctx.loopback && !ctx.token_ok(auth::bearer(req).or_else(|| auth::cookie(req))) {
        return match segs.as_slice() {
            [""] => Response::new(401, "text/html; charset=utf-8", page::login(false)),
            _ => unauthorized(),
        };
    }
    let r = match segs.as_slice() {
        [""] => index(ctx),
        ["app.js"] => Ok(Response::new(
            200,
            "text/javascript; charset=utf-8",
            page::JS,
        )),
        ["app.css"] => Ok(Response::new(200, "text/css; charset=utf-8", page::CSS)),
        ["metrics"] => metrics_page(ctx),
        ["api", "apps"] => apps(ctx).map(|(rows, _)| Response::json(200, &Value::Array(rows))),
        ["api", "apps", name, "logs"] => Ok(logs(ctx, req, name)),
        _ => Ok(Response::text(404, "no such page")),
    };
    r.unwrap_or_else(|e| Response::text(500, &format!("{e:#}")))
}

/// The rows of every app, sampled for the sparklines, with their
/// counters.
fn apps(ctx: &Ctx) -> Result<(Vec<Value>, Vec<Counters>)> {
    let rows = show::app_rows(&ctx.paths, Some(&ctx.sampler.window()))?;
    let counters: Vec<Counters> = rows
        .iter()
        .map(|v| counters(&ctx.paths, v["name"].as_str().unwrap_or("")))
        .collect();
    let now: HashMap<String, (Option<u64>, Option<u64>)> = rows
        .iter()
        .zip(&counters)
        .map(|(v, c)| {
            (
                v["name"].as_str().unwrap_or("").to_string(),
                (c.cpu_ns, v["memoryBytes"].as_u64()),
            )
        })
        .collect();
    let unix = chrono::Utc::now().timestamp().max(0) as u64;
    ctx.sampler.record(&now, unix);
    Ok((rows, counters))
}

/// The container's counters (none without a container).
fn counters(paths: &Paths, name: &str) -> Counters {
    if settings::check_name(name).is_err() {
        return Counters::default();
    }
    let Some(c) = runtime::state(paths, name).ok().flatten() else {
        return Counters::default();
    };
    Counters {
        cpu_ns: crate::cgroups::stats(&c.cgroup_paths)["cpu"]["usage"]["total"].as_u64(),
        oom_kills: Some(crate::cgroups::oom_kills(&c.cgroup_paths)),
    }
}

fn index(ctx: &Ctx) -> Result<Response> {
    let (rows, _) = apps(ctx)?;
    let cards: Vec<_> = rows
        .into_iter()
        .map(|v| {
            let name = v["name"].as_str().unwrap_or("").to_string();
            let log = if settings::check_name(&name).is_ok() {
                logtail::tail(&App::at(&ctx.paths, &name).logs(), page::LOG_LINES, None)
            } else {
                Vec::new()
            };
            (v, ctx.sampler.history(&name), log)
        })
        .collect();
    let now = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    Ok(Response::new(
        200,
        "text/html; charset=utf-8",
        page::render(&cards, &now),
    ))
}

fn metrics_page(ctx: &Ctx) -> Result<Response> {
    let (rows, counters) = apps(ctx)?;
    let pairs: Vec<(Value, Counters)> = rows.into_iter().zip(counters).collect();
    Ok(Response::new(
        200,
        metrics::CONTENT_TYPE,
        metrics::render(&pairs),
    ))
}

fn logs(ctx: &Ctx, req: &Request, name: &str) -> Response {
    if settings::check_name(name).is_err() {
        return Response::text(400, "not an app name");
    }
    let app = App::at(&ctx.paths, name);
    if !app.exists() {
        return Response::text(404, &format!("no app named {name:?}"));
    }
    let after = req.param("after").filter(|a| !a.is_empty());
    // A cursor is a time the server gave: digits and the RFC 3339 signs.
    // (The client encodes ':' as %3A.)
    let after = after.map(|a| a.replace("%3A", ":").replace("%3a", ":"));
    if after.as_ref().is_some_and(|a| {
        a.len() > 40
            || !a
                .bytes()
                .all(|b| b.is_ascii_digit() || b"-:.TZ".contains(&b))
    }) {
        return Response::text(400, "after: not a log time");
    }
    let n = match req.param("n").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) => n.min(MAX_LOG_LINES),
        Some(Err(_)) => return Response::text(400, "n: not a number"),
    };
    let lines = logtail::tail(&app.logs(), n, after.as_deref());
    Response::json(200, &json!({ "name": name, "lines": lines }))
}

fn login(ctx: &Ctx, req: &Request) -> Response {
    if !auth::same_origin(req) {
        return Response::text(403, "cross-site request refused");
    }
    let body = String::from_utf8_lossy(&req.body);
    let given = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.trim());
    if !ctx.token_ok(given) {
        return Response::new(401, "text/html; charset=utf-8", page::login(true));
    }
    Response::text(303, "see /").with("Location", "/").with(
        "Set-Cookie",
        format!(
            "{}={}; HttpOnly; SameSite=Strict; Path=/",
            auth::COOKIE,
            ctx.token
        ),
    )
}

/// POST /api/apps/NAME/WHAT: the CSRF check, then the token, then the
/// name; nothing is done unless all three pass.
fn action(ctx: &Ctx, req: &Request, name: &str, what: &str) -> Response {
    if !auth::same_origin(req) {
        return Response::text(403, "cross-site request refused");
    }
    if !ctx.token_ok(auth::bearer(req)) {
        return unauthorized();
    }
    if !matches!(what, "restart" | "stop" | "start") {
        return Response::text(404, "actions: restart, stop, start");
    }
    if settings::check_name(name).is_err() {
        return Response::text(400, "not an app name");
    }
    if !App::at(&ctx.paths, name).exists() {
        return Response::text(404, &format!("no app named {name:?}"));
    }
    if ctx.stopping.load(Ordering::SeqCst) {
        return Response::text(503, "the server is ending");
    }
    if ctx.actions.fetch_add(1, Ordering::SeqCst) >= MAX_ACTIONS {
        ctx.actions.fetch_sub(1, Ordering::SeqCst);
        return Response::text(503, "too many actions under way: try again");
    }
    let r = match what {
        "restart" => restart(&ctx.paths, name),
        "stop" => lifecycle::stop(&ctx.paths, name, None),
        _ => lifecycle::start(&ctx.paths, name),
    };
    ctx.actions.fetch_sub(1, Ordering::SeqCst);
    match r {
        Ok(()) => Response::json(200, &json!({"name": name, "action": what, "ok": true})),
        Err(e) => Response::json(
            409,
            &json!({"name": name, "action": what, "ok": false, "error": format!("{e:#}")}),
        ),
    }
}

/// Stop and start, counted as a restart: the count `ls` shows goes on
/// from where it was, one more (`rrun app start` starts it again from 0).
fn restart(paths: &Paths, name: &str) -> Result<()> {
    let before = show::app_row(paths, name)?["restarts"]
        .as_u64()
        .unwrap_or(0);
    lifecycle::stop(paths, name, None)?;
    lifecycle::start(paths, name)?;
    let app = App::at(paths, name);
    let _lock = state::lock(paths, name)?;
    let mut st = app.load_state()?;
    let carried = u32::try_from(before.saturating_add(1)).unwrap_or(u32::MAX);
    st.earlier_restarts = st.earlier_restarts.saturating_add(carried);
    app.save_state(&st).context("counting the restart")?;
    app.event(
        "restart",
        json!({"reason": "restarted from the status page"}),
    );
    Ok(())
}
