//! The status page: one HTML document rendered here from the rows `ls`
//! shows, the samples and the log tails, readable as it comes (no
//! JavaScript needed to read it; it reloads itself every few seconds when
//! scripting is off), plus the script and style it links. Everything the
//! page shows from an app or a container is escaped; the page loads
//! nothing from anywhere else (the server's CSP says so too). Pure.

use serde_json::Value;

use super::logtail::LogLine;
use super::sampler::Sample;
use crate::app::show::{human_bytes, human_duration};

/// Log lines rendered per app (the script then follows from the last).
pub const LOG_LINES: usize = 40;

/// `&`, `<`, `>`, `"`, `'` escaped: safe in text and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/app.css\">\
         <script src=\"/app.js\" defer></script>\
         <noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript></head>\n",
        esc(title)
    )
}

/// A sparkline of `values` (oldest first) as inline SVG, scaled to
/// `max` (at least the largest value).
fn sparkline(values: &[f64], max: f64, label: &str) -> String {
    if values.len() < 2 {
        return String::new();
    }
    let top = values
        .iter()
        .copied()
        .fold(max, f64::max)
        .max(f64::MIN_POSITIVE);
    let n = values.len() - 1;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * 100.0 / n as f64,
                19.0 - v.max(0.0) / top * 18.0
            )
        })
        .collect();
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 100 20\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"{}\"><polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" \
         vector-effect=\"non-scaling-stroke\" points=\"{}\"/></svg>",
        esc(label),
        points.join(" ")
    )
}

fn minutes(samples: &[Sample]) -> String {
    match (samples.first(), samples.last()) {
        (Some(a), Some(b)) if b.t > a.t => format!("the last {}", human_duration(b.t - a.t)),
        _ => "the last moments".into(),
    }
}

fn dd(label: &str, field: &str, value: &str) -> String {
    format!(
        "<dt>{label}</dt><dd data-f=\"{field}\">{}</dd>",
        if value.is_empty() { "-" } else { value }
    )
}

/// One app's card: everything but the log changes on each refresh (the
/// script swaps `.live` whole), the log is followed.
fn card(v: &Value, samples: &[Sample], log: &[LogLine]) -> String {
    let name = v["name"].as_str().unwrap_or("");
    let state = v["state"].as_str().unwrap_or("unknown");
    let health = v["health"].as_str().unwrap_or("none");
    let s = |k: &str| esc(v[k].as_str().unwrap_or(""));
    let cpu: Vec<f64> = samples.iter().filter_map(|x| x.cpu).collect();
    let mem: Vec<f64> = samples
        .iter()
        .filter_map(|x| x.mem.map(|m| m as f64))
        .collect();
    let span = minutes(samples);
    let cpu_txt = v["cpuPercent"]
        .as_f64()
        .or(samples.last().and_then(|x| x.cpu))
        .map(|c| format!("{c:.1} %"))
        .unwrap_or_default();
    let mem_txt = match (v["memoryBytes"].as_u64(), v["memoryLimit"].as_str()) {
        (Some(b), Some(l)) => format!("{} (limit {})", human_bytes(b), esc(l)),
        (Some(b), None) => human_bytes(b),
        _ => String::new(),
    };
    let digest = v["image"]["digest"].as_str().unwrap_or("");
    let image = format!(
        "{} <code class=\"digest\" title=\"{}\">{}</code>",
        esc(v["image"]["source"].as_str().unwrap_or("")),
        esc(digest),
        esc(digest.get(..19).unwrap_or(digest))
    );
    let ports = v["ports"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|x| x.as_str())
                .map(esc)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let check = v["healthLog"]
        .as_array()
        .and_then(|l| l.last())
        .map(|h| {
            format!(
                "<pre class=\"check\">{} ({}): {}</pre>",
                esc(h["time"].as_str().unwrap_or("")),
                esc(h["exit"].as_str().unwrap_or("")),
                esc(h["output"].as_str().unwrap_or("").trim_end())
            )
        })
        .unwrap_or_default();
    let mut log_html = String::new();
    for l in log {
        log_html.push_str(&format!(
            "<span class=\"{}\">{}</span>\n",
            l.stream,
            esc(&l.text)
        ));
    }
    let after = log.last().map(|l| l.time.as_str()).unwrap_or("");
    let button = |act: &str, label: &str| {
        format!(
            "<button type=\"button\" class=\"act\" data-act=\"{act}\" data-app=\"{}\">{label}</button>",
            esc(name)
        )
    };
    let running = matches!(state, "running" | "starting");
    format!(
        "<section class=\"app\" id=\"app-{n}\" data-app=\"{n}\">\n\
         <div class=\"live\">\n\
         <h2>{n} <span class=\"state s-{st}\" data-f=\"state\">{st}</span> \
         <span class=\"health h-{h}\" data-f=\"health\">{hl}</span></h2>\n<dl>\
         {restarts}{uptime}\
         <dt>CPU</dt><dd data-f=\"cpu\">{cpu}{cpu_svg}</dd>\
         <dt>Memory</dt><dd data-f=\"memory\">{mem}{mem_svg}</dd>\
         {image}{ports}{exit}{check}</dl>\n</div>\n\
         <p class=\"actions\">{b1}{b2}{b3} <span class=\"msg\" role=\"status\"></span></p>\n\
         <details open><summary>Log</summary><pre class=\"log\" data-app=\"{n}\" data-after=\"{after}\">{log_html}</pre></details>\n\
         </section>\n",
        n = esc(name),
        st = esc(state),
        h = esc(health),
        hl = esc(health),
        restarts = dd(
            "Restarts",
            "restarts",
            &v["restarts"].as_u64().unwrap_or(0).to_string()
        ),
        uptime = dd(
            "Uptime",
            "uptime",
            &v["uptimeSeconds"]
                .as_u64()
                .map(human_duration)
                .unwrap_or_default()
        ),
        cpu = if cpu_txt.is_empty() {
            "-".into()
        } else {
            cpu_txt
        },
        cpu_svg = sparkline(&cpu, 1.0, &format!("CPU % over {span}")),
        mem = if mem_txt.is_empty() {
            "-".into()
        } else {
            mem_txt
        },
        mem_svg = sparkline(&mem, 0.0, &format!("memory over {span}")),
        image = dd("Image", "image", &image),
        ports = dd("Ports", "ports", &ports),
        exit = dd("Last exit", "lastExit", &s("lastExit")),
        check = if check.is_empty() {
            String::new()
        } else {
            format!("<dt>Last check</dt><dd data-f=\"check\">{check}</dd>")
        },
        b1 = button("restart", "Restart"),
        b2 = if running {
            button("stop", "Stop")
        } else {
            String::new()
        },
        b3 = if running {
            String::new()
        } else {
            button("start", "Start")
        },
        after = esc(after),
    )
}

/// The whole page. `apps`: each row with its samples and log tail.
pub fn render(apps: &[(Value, Vec<Sample>, Vec<LogLine>)], now: &str) -> String {
    let mut o = head("rrun apps");
    o.push_str(
        "<body><header><h1>rrun apps</h1>\
         <span class=\"updated\">as of <time id=\"updated\">",
    );
    o.push_str(&esc(now));
    o.push_str(
        "</time></span>\
         <label class=\"token\">Token <input id=\"token\" type=\"password\" autocomplete=\"off\" \
         placeholder=\"for the buttons\"></label>\
         <noscript><p class=\"note\">Scripting is off: this page reloads every 10 seconds; \
         the buttons need scripting.</p></noscript></header>\n<main id=\"apps\">\n",
    );
    if apps.is_empty() {
        o.push_str(
            "<p class=\"empty\">No apps. Run one with <code>rrun app run -d IMAGE</code>.</p>\n",
        );
    }
    for (v, samples, log) in apps {
        o.push_str(&card(v, samples, log));
    }
    o.push_str("</main></body></html>\n");
    o
}

/// The page a server on another address than loopback shows before the
/// token is given (reading needs it there too).
pub fn login(failed: bool) -> String {
    let mut o = head("rrun apps: token");
    o.push_str("<body><header><h1>rrun apps</h1></header><main class=\"login\">");
    if failed {
        o.push_str("<p class=\"msg bad\">Wrong token.</p>");
    }
    o.push_str(
        "<form method=\"post\" action=\"/login\"><label>Token \
         <input name=\"token\" type=\"password\" autocomplete=\"off\" required></label> \
         <button type=\"submit\">Open</button></form>\
         <p>The token was printed when <code>rrun app serve</code> started \
         (or is in its <code>--token-file</code>).</p></main></body></html>\n",
    );
    o
}

pub const CSS: &str = r#":root{color-scheme:light dark;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--mute:#6e7781}
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,sans-serif}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:baseline;padding:.6rem 1rem;border-bottom:1px solid #8884}
h1{font-size:1.2rem;margin:0}
.updated{color:var(--mute);font-size:.85rem}
.token{margin-left:auto;font-size:.85rem}
.token input{width:10rem}
.note{flex-basis:100%;margin:0;color:var(--warn)}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,26rem),1fr));gap:1rem;padding:1rem}
.app{border:1px solid #8886;border-radius:6px;padding:.6rem .8rem;min-width:0}
.app.gone{opacity:.5}
h2{font-size:1.05rem;margin:0 0 .4rem;word-break:break-all}
.state,.health{font-size:.75rem;font-weight:normal;padding:.05rem .4rem;border-radius:3px;border:1px solid currentColor}
.h-none{display:none}
.s-running,.h-healthy{color:var(--ok)}
.s-exited,.h-unhealthy,.s-unknown{color:var(--bad)}
.s-starting,.s-created,.h-starting{color:var(--warn)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:0}
dt{color:var(--mute)}
dd{margin:0;min-width:0;overflow-wrap:anywhere}
.spark{display:block;width:100%;max-width:14rem;height:1.4rem;color:#0969da}
code,pre{font:12px/1.35 ui-monospace,monospace}
pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}
.check{max-height:5rem;overflow:auto}
.actions{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.6rem 0 .3rem}
button{font:inherit;padding:.35rem .9rem;border-radius:4px;border:1px solid #8888;cursor:pointer}
button:disabled{opacity:.5;cursor:wait}
.msg{font-size:.85rem;color:var(--mute)}
.msg.bad{color:var(--bad)}
.log{max-height:16rem;overflow:auto;background:#8881;padding:.4rem;border-radius:4px}
.log .stderr{color:var(--bad)}
.login{display:block;max-width:30rem}
"#;

pub const JS: &str = r#"'use strict';
// The status page's script: keeps the page current (state and numbers
// every 2 s, the logs followed), and runs the buttons. Reading works
// without it; nothing here is needed to see the apps.
(function () {
  const PERIOD = 2000, KEEP = 500;
  const key = 'rrun-serve-token';
  const m = /[#&]token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(key, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const tokenInput = () => document.getElementById('token');
  const token = () => (tokenInput() && tokenInput().value) || sessionStorage.getItem(key) || '';

  function setup(root) {
    root.querySelectorAll('button.act').forEach(b => b.addEventListener('click', act));
  }

  async function act(ev) {
    const b = ev.currentTarget, name = b.dataset.app, what = b.dataset.act;
    const sec = b.closest('section'), msg = sec.querySelector('.msg');
    sec.dataset.busy = '1';
    sec.querySelectorAll('button.act').forEach(x => x.disabled = true);
    msg.className = 'msg'; msg.textContent = what + '…';
    try {
      const r = await fetch('/api/apps/' + encodeURIComponent(name) + '/' + what, {
        method: 'POST', credentials: 'same-origin',
        headers: {'Authorization': 'Bearer ' + token()}});
      const text = (await r.text()).trim();
      msg.textContent = r.ok ? what + ': done' : (r.status === 401 ? 'wrong or missing token' : text);
      if (!r.ok) msg.className = 'msg bad';
    } catch (e) {
      msg.className = 'msg bad'; msg.textContent = String(e);
    }
    delete sec.dataset.busy;
    await refresh();
    sec.querySelectorAll('button.act').forEach(x => x.disabled = false);
  }

  // The page again: each card's live part swapped, new apps added, gone
  // ones removed.
  async function refresh() {
    let doc;
    try {
      const r = await fetch('/', {credentials: 'same-origin'});
      if (!r.ok) return;
      doc = new DOMParser().parseFromString(await r.text(), 'text/html');
    } catch (e) { return; }
    const main = document.getElementById('apps');
    const fresh = new Map();
    doc.querySelectorAll('section.app').forEach(s => fresh.set(s.dataset.app, s));
    main.querySelectorAll('section.app').forEach(s => {
      const n = fresh.get(s.dataset.app);
      if (!n) { s.remove(); return; }
      s.querySelector('.live').replaceWith(document.importNode(n.querySelector('.live'), true));
      fresh.delete(s.dataset.app);
      // Its buttons stay as they are while its action is under way.
      if (s.dataset.busy) return;
      const acts = s.querySelector('.actions'), msg = acts.querySelector('.msg');
      const nacts = document.importNode(n.querySelector('.actions'), true);
      nacts.querySelector('.msg').replaceWith(msg);
      acts.replaceWith(nacts);
      setup(nacts);
    });
    fresh.forEach(n => {
      const s = document.importNode(n, true);
      main.appendChild(s);
      setup(s);
    });
    const empty = main.querySelector('.empty'), nempty = doc.querySelector('.empty');
    if (empty && !nempty) empty.remove();
    if (!empty && nempty && !main.querySelector('section.app')) main.appendChild(document.importNode(nempty, true));
    const u = doc.getElementById('updated');
    if (u) document.getElementById('updated').textContent = u.textContent;
  }

  async function follow(pre) {
    const name = pre.dataset.app;
    let r;
    try {
      r = await fetch('/api/apps/' + encodeURIComponent(name) + '/logs?after=' +
        encodeURIComponent(pre.dataset.after || ''), {credentials: 'same-origin'});
    } catch (e) { return; }
    if (!r.ok) return;
    const lines = (await r.json()).lines || [];
    if (!lines.length) return;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    for (const l of lines) {
      const span = document.createElement('span');
      span.className = l.stream === 'stderr' ? 'stderr' : 'stdout';
      span.textContent = l.text;
      pre.appendChild(span);
      pre.appendChild(document.createTextNode('\n'));
    }
    pre.dataset.after = lines[lines.length - 1].time;
    while (pre.childNodes.length > 2 * KEEP) pre.removeChild(pre.firstChild);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  let busy = false;
  async function tick() {
    if (busy) return;
    busy = true;
    try {
      await refresh();
      await Promise.all([...document.querySelectorAll('pre.log')].map(follow));
    } finally { busy = false; }
  }

  document.addEventListener('DOMContentLoaded', () => {
    // The login form (every reader but the server's own user over
    // loopback): the token typed there serves the buttons too.
    const login = document.querySelector('form[action="/login"]');
    if (login) login.addEventListener('submit', () => sessionStorage.setItem(key, login.token.value));
    const t = tokenInput();
    if (t) {
      t.value = sessionStorage.getItem(key) || '';
      t.addEventListener('change', () => sessionStorage.setItem(key, t.value));
    }
    if (!document.getElementById('apps')) return;
    setup(document);
    document.querySelectorAll('pre.log').forEach(p => p.scrollTop = p.scrollHeight);
    setInterval(tick, PERIOD);
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn everything_from_an_app_is_escaped() {
        let v = json!({"name": "web", "state": "running", "health": "healthy", "restarts": 2,
            "uptimeSeconds": 75, "cpuPercent": 1.5, "memoryBytes": 2048, "memoryLimit": "64m",
            "image": {"source": "<script>x</script>", "digest": "sha256:0123456789abcdef0123"},
            "ports": ["127.0.0.1:8080:80/tcp"], "lastExit": "exit 1 \"quoted\"",
            "healthLog": [{"time": "t", "exit": "exit 0", "output": "<b>ok</b>\n"}]});
        let log = vec![LogLine {
            time: "2026-01-01T00:00:00.000000000Z".into(),
            stream: "stderr",
            text: "<img src=x onerror=alert(1)>".into(),
        }];
        let samples: Vec<Sample> = (0..3)
            .map(|i| Sample {
                t: i * 2,
                cpu: Some(i as f64),
                mem: Some(1000 + i),
            })
            .collect();
        let html = render(&[(v, samples, log)], "now");
        assert!(!html.contains("<script>x"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>ok"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("data-f=\"restarts\">2<"));
        assert!(html.contains("1m15s"));
        assert!(html.contains("<svg class=\"spark\""));
        assert!(html.contains("data-act=\"restart\" data-app=\"web\""));
        assert!(html.contains("data-act=\"stop\""));
        assert!(!html.contains("data-act=\"start\""));
        assert!(html.contains("127.0.0.1:8080:80/tcp"));
        // Nothing from elsewhere.
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains(" style="), "CSP: no inline style");
        assert!(!html.contains("<script>"), "CSP: no inline script");
    }

    #[test]
    fn no_apps_and_login() {
        assert!(render(&[], "now").contains("No apps"));
        assert!(login(true).contains("Wrong token"));
        assert!(login(false).contains("action=\"/login\""));
    }

    #[test]
    fn sparklines_need_two_points() {
        assert_eq!(sparkline(&[1.0], 1.0, "x"), "");
        let s = sparkline(&[0.0, 2.0], 1.0, "x");
        assert!(s.contains("0.0,19.0 100.0,1.0"), "{s}");
    }
}
