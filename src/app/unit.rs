//! `rrun app unit`: systemd units that run apps, compose projects and the
//! status page (`rrun app serve`) at boot. Generation is pure (settings in,
//! unit texts out); [`main`] only reads what it needs and prints or writes
//! the files.
//!
//! How a unit runs an app (decided here, documented in README "Start at
//! boot"):
//! - `Type=notify`, `NotifyAccess=all`: `rrun app run -d --sd-notify` (or
//!   `compose up --no-deps --sd-notify S`) says READY once the app is
//!   healthy (running, without a health check), with MAINPID = the app's
//!   monitor, and exits. The monitor is then the unit's main process; it
//!   exits 0 when the app was stopped or its program ended with 0, non-zero
//!   when the app failed or gave up, so the unit ends "inactive" or
//!   "failed" accordingly.
//! - No systemd `Restart=`: rrun's init restarts the program by the app's
//!   own policy inside the container; systemd sees one long-lived main
//!   process. The monitor ending means the app's life is over.
//! - `Delegate=yes`: the container's cgroup is nested in the unit's (the
//!   main process moves itself to a leaf first: notify::prepare).
//! - `ExecStartPre=-rrun app rm -f NAME`: a stale app of the same name
//!   (a crash, a reboot, the app the unit was generated from) is replaced;
//!   ExecStop stops it with its own stop signal and grace period;
//!   `ExecStopPost=-rrun app rm -f NAME` leaves nothing behind, whatever
//!   happened. `KillMode=mixed`: systemd's SIGTERM goes to the monitor
//!   only (which ignores it: the stop is ExecStop's, through the app's
//!   init); the final SIGKILL after TimeoutStopSec reaches everything left.
//! - Compose: one unit per service, `Requires=` (or `Wants=` for a
//!   dependency with `required: false`) and `After=` from depends_on — READY
//!   means healthy, so `service_healthy` holds when the dependent starts; a
//!   service another one waits for with `service_completed_successfully`
//!   is `Type=oneshot` + `RemainAfterExit=yes` (its ExecStart returns when
//!   the job exited, successfully or not). A `rrun-P.target` wants them
//!   all; the services are `PartOf=` it, so stopping the target stops them
//!   in reverse dependency order.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::paths::Paths;
use super::settings::AppSpec;
use super::state::App;

#[derive(Args, Debug)]
pub struct UnitArgs {
    /// Write one file per unit into DIR (created) instead of printing them
    #[arg(long, value_name = "DIR", conflicts_with = "install")]
    pub output: Option<PathBuf>,
    /// Write them where systemd looks for them and reload systemd
    #[arg(long)]
    pub install: bool,
    /// Units for the user's service manager (systemctl --user)
    #[arg(long)]
    pub user: bool,
    /// A unit for the status page (`rrun app serve`) as well
    #[arg(long)]
    pub serve: bool,
    /// The status page's address (with --serve)
    #[arg(long, value_name = "ADDR", requires = "serve")]
    pub listen: Option<String>,
    /// A compose file: units for its project (repeatable, as compose -f)
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "names"
    )]
    pub files: Vec<PathBuf>,
    /// The compose project's name (with -f)
    #[arg(
        short = 'p',
        long = "project-name",
        value_name = "NAME",
        requires = "files"
    )]
    pub project: Option<String>,
    /// Apps to make units for (their current settings)
    pub names: Vec<String>,
}

/// One generated unit: its file name and text.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub file: String,
    pub text: String,
}

/// What every generated command line starts with.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The rrun binary (absolute).
    pub rrun: PathBuf,
    /// The app root, passed explicitly: a unit must not depend on
    /// $RRUN_APP_ROOT, which systemd does not set.
    pub app_root: PathBuf,
    /// For the user's manager: WantedBy=default.target.
    pub user: bool,
}

impl Ctx {
    /// `rrun app --app-root R ARGS...` as one quoted command line.
    fn cmd<S: AsRef<str>>(&self, args: &[S]) -> String {
        let mut v = vec![
            self.rrun.display().to_string(),
            "app".into(),
            "--app-root".into(),
            self.app_root.display().to_string(),
        ];
        v.extend(args.iter().map(|a| a.as_ref().to_string()));
        exec_line(&v)
    }

    fn wanted_by(&self) -> &'static str {
        if self.user {
            "default.target"
        } else {
            "multi-user.target"
        }
    }
}

/// One argument of an Exec line, as systemd.service(5) and
/// systemd.syntax(7) split and expand them: `%` (specifiers) doubled, `$`
/// (variable expansion) doubled, and anything but plain characters in
/// double quotes with `\` and `"` escaped (C escapes are decoded inside
/// quotes). A lone `;` would separate commands: escaped.
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=,@+-%$".contains(&b));
    let mut out = String::with_capacity(arg.len() + 2);
    if !plain {
        out.push('"');
    }
    for c in arg.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    if !plain {
        out.push('"');
    }
    out
}

/// An Exec line: each argument quoted.
pub fn exec_line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A unit file's value that is free text (Description=): one line, `%`
/// doubled.
fn text_value(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('%', "%%")
}

/// Seconds systemd waits for READY: the image import plus, with a health
/// check, the time the init takes to decide (start period, every retry).
pub fn start_timeout(spec: &AppSpec) -> u64 {
    const IMPORT: u64 = 120;
    let health = match &spec.health {
        Some(_) => super::lifecycle::health_deadline(spec).as_secs() + 1,
        None => 5,
    };
    IMPORT + health
}

/// Seconds systemd waits for ExecStop: the app's grace period, then rrun's
/// own SIGKILL and the wait for the monitor (lifecycle::stop).
pub fn stop_timeout(spec: &AppSpec) -> u64 {
    spec.stop_timeout + 20
}

/// The lines every app unit's [Service] has; `start` is the ExecStart argv
/// after `rrun app --app-root R`.
/// `project`: a compose service's, whose `rm -f` must leave an app of the
/// same name that is not the project's (names meet: `a` + `b-c`, `a-b` +
/// `c`).
fn service_section(
    ctx: &Ctx,
    spec: &AppSpec,
    start: &[String],
    oneshot: bool,
    project: Option<&str>,
) -> String {
    let name = spec.name.as_str();
    let rm: Vec<&str> = match project {
        Some(p) => vec!["rm", "-f", "--if-project", p, name],
        None => vec!["rm", "-f", name],
    };
    // NotifyAccess for a oneshot too: systemd sets $NOTIFY_SOCKET only
    // then, and that is what makes its main process move to the leaf
    // cgroup (notify::prepare), keeping the job's container in the unit.
    let kind = if oneshot {
        "Type=oneshot\nRemainAfterExit=yes\nNotifyAccess=all\n"
    } else {
        "Type=notify\nNotifyAccess=all\n"
    };
    format!(
        "[Service]\n\
         {kind}\
         Delegate=yes\n\
         KillMode=mixed\n\
         ExecStartPre=-{pre}\n\
         ExecStart={start}\n\
         ExecStop={stop}\n\
         ExecStopPost=-{post}\n\
         TimeoutStartSec={tstart}\n\
         TimeoutStopSec={tstop}\n",
        pre = ctx.cmd(&rm),
        start = ctx.cmd(start),
        stop = ctx.cmd(&["stop", name]),
        post = ctx.cmd(&rm),
        tstart = start_timeout(spec),
        tstop = stop_timeout(spec),
    )
}

fn header(what: &str) -> String {
    format!("# {}\n", text_value(what))
}

/// The unit of a single app: `rrun-app-NAME.service`, which creates the
/// app from these settings each time it starts.
pub fn app_unit(ctx: &Ctx, spec: &AppSpec) -> Unit {
    let mut start = vec![
        "run".to_string(),
        "-d".into(),
        "--sd-notify".into(),
        "--name".into(),
        spec.name.clone(),
    ];
    start.extend(spec.to_args());
    start.push(spec.source.clone());
    start.extend(spec.command.iter().cloned());
    let text = format!(
        "{head}[Unit]\n\
         Description=rrun app {desc}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         RequiresMountsFor={root}\n\
         \n\
         {service}\n\
         [Install]\n\
         WantedBy={wanted}\n",
        head = header(&format!(
            "rrun app {}: generated by rrun app unit",
            spec.name
        )),
        desc = text_value(&spec.name),
        root = quote(&ctx.app_root.display().to_string()),
        service = service_section(ctx, spec, &start, false, None),
        wanted = ctx.wanted_by(),
    );
    Unit {
        file: format!("rrun-app-{}.service", spec.name),
        text,
    }
}

/// A compose service as the units need it (from compose's Project).
#[derive(Debug, Clone)]
pub struct ServiceUnit {
    /// The service's name in the file (S).
    pub service: String,
    /// Its app (name P-S).
    pub app: AppSpec,
    /// (dependency service, required): Requires= when required, else Wants=.
    pub depends_on: Vec<(String, bool)>,
    /// Some service waits for it to complete: a oneshot unit.
    pub one_shot: bool,
}

/// A compose project as the units need it.
#[derive(Debug, Clone)]
pub struct ProjectUnits {
    pub name: String,
    /// The compose files, absolute, in order.
    pub files: Vec<PathBuf>,
    pub services: Vec<ServiceUnit>,
}

pub fn service_unit_name(project: &str, service: &str) -> String {
    format!("rrun-{project}-{service}.service")
}

pub fn target_name(project: &str) -> String {
    format!("rrun-{project}.target")
}

/// The units of a compose project: one per service, and its target.
pub fn project_units(ctx: &Ctx, p: &ProjectUnits) -> Vec<Unit> {
    let target = target_name(&p.name);
    let mut units = Vec::new();
    let mut compose = vec!["compose".to_string()];
    for f in &p.files {
        compose.extend(["-f".to_string(), f.display().to_string()]);
    }
    compose.extend(["-p".to_string(), p.name.clone()]);
    for s in &p.services {
        let mut start = compose.clone();
        start.extend([
            "up".to_string(),
            "--no-deps".into(),
            "--sd-notify".into(),
            s.service.clone(),
        ]);
        let mut deps = String::new();
        for (d, required) in &s.depends_on {
            let u = service_unit_name(&p.name, d);
            let kind = if *required { "Requires" } else { "Wants" };
            deps.push_str(&format!("{kind}={u}\nAfter={u}\n"));
        }
        let text = format!(
            "{head}[Unit]\n\
             Description=rrun compose project {proj}: service {svc}\n\
             PartOf={target}\n\
             Wants=network-online.target\n\
             After=network-online.target\n\
             {deps}\
             RequiresMountsFor={root}\n\
             \n\
             {service}\n\
             [Install]\n\
             WantedBy={target}\n",
            head = header(&format!(
                "rrun compose project {}, service {}: generated by rrun app unit",
                p.name, s.service
            )),
            proj = text_value(&p.name),
            svc = text_value(&s.service),
            root = quote(&ctx.app_root.display().to_string()),
            service = service_section(ctx, &s.app, &start, s.one_shot, Some(&p.name)),
        );
        units.push(Unit {
            file: service_unit_name(&p.name, &s.service),
            text,
        });
    }
    let wants: Vec<String> = p
        .services
        .iter()
        .map(|s| service_unit_name(&p.name, &s.service))
        .collect();
    units.push(Unit {
        file: target,
        text: format!(
            "{head}[Unit]\n\
             Description=rrun compose project {proj}\n\
             Wants={wants}\n\
             \n\
             [Install]\n\
             WantedBy={wanted}\n",
            head = header(&format!(
                "rrun compose project {}: generated by rrun app unit",
                p.name
            )),
            proj = text_value(&p.name),
            wants = wants.join(" "),
            wanted = ctx.wanted_by(),
        ),
    });
    units
}

/// The status page's unit, `rrun-app-serve.service`. The server reads the
/// app root, the run directory, cgroups and /proc, and starts apps from
/// its buttons (their monitors then live in this unit's cgroup, hence
/// KillMode=process: stopping the page never stops apps). No sandboxing
/// options: an app started from the page would inherit them for good
/// (no_new_privs breaks its setuid programs; a private /tmp or read-only
/// /home would change its volumes; its mounts would be made in the
/// unit's own mount namespace, out of reach of `rrun app` elsewhere).
pub fn serve_unit(ctx: &Ctx, listen: Option<&str>) -> Unit {
    let token = ctx.app_root.join("serve.token");
    let mut argv = vec!["serve".to_string()];
    if let Some(l) = listen {
        argv.extend(["--listen".to_string(), l.to_string()]);
    }
    argv.extend(["--token-file".to_string(), token.display().to_string()]);
    let text = format!(
        "{head}[Unit]\n\
         Description=rrun app status page\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         RequiresMountsFor={root}\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={start}\n\
         KillMode=process\n\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         WantedBy={wanted}\n",
        head = header("rrun app serve: generated by rrun app unit --serve"),
        root = quote(&ctx.app_root.display().to_string()),
        start = ctx.cmd(&argv),
        wanted = ctx.wanted_by(),
    );
    Unit {
        file: "rrun-app-serve.service".into(),
        text,
    }
}

/// Whether an image source names its file or directory by an absolute
/// path (a unit runs from /, not from where `rrun app run` was typed).
pub fn source_is_absolute(source: &str) -> bool {
    let path = ["oci:", "oci-archive:", "docker-archive:"]
        .iter()
        .find_map(|p| source.strip_prefix(p))
        .unwrap_or(source);
    path.starts_with('/')
}

/// Where --install puts units.
fn install_dir(user: bool) -> Result<PathBuf> {
    if !user {
        return Ok(PathBuf::from("/etc/systemd/system"));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => Path::new(&h).join(".config"),
            None => bail!("--install --user: neither XDG_CONFIG_HOME nor HOME is set"),
        },
    };
    Ok(base.join("systemd/user"))
}

/// The units `a` asks for (no side effects).
fn generate(paths: &Paths, a: &UnitArgs) -> Result<Vec<Unit>> {
    // The binary on the host, not a clone rrun may run from.
    let rrun = super::lifecycle::rrun_path()?;
    let app_root = if paths.root.is_absolute() {
        paths.root.clone()
    } else {
        std::env::current_dir()?.join(&paths.root)
    };
    let ctx = Ctx {
        rrun,
        app_root,
        user: a.user,
    };
    let mut units = Vec::new();
    if !a.files.is_empty() {
        units.extend(project_units(&ctx, &load_project(a)?));
    }
    for name in &a.names {
        super::settings::check_name(name)?;
        let app = App::at(paths, name);
        if !app.exists() {
            bail!("no app named {name:?}");
        }
        let spec = app.load_spec()?;
        if !source_is_absolute(&spec.source) {
            bail!(
                "app {name}'s image source {:?} is a relative path, which a unit cannot resolve: run the app again with an absolute path",
                spec.source
            );
        }
        if !spec.aliases.is_empty() || !spec.extra_hosts.is_empty() {
            bail!(
                "app {name} has network aliases or extra hosts (a compose service's): make units for its project with -f FILE"
            );
        }
        units.push(app_unit(&ctx, &spec));
    }
    if a.serve {
        units.push(serve_unit(&ctx, a.listen.as_deref()));
    }
    if units.is_empty() {
        bail!("nothing to make units for: name apps, or a compose file with -f, or --serve");
    }
    Ok(units)
}

/// The compose project of -f/-p as the units need it. The units load the
/// file again each time they start (so a changed file takes effect on the
/// next start): variables must come from its `.env`, not from the shell
/// `rrun app unit` runs in.
fn load_project(a: &UnitArgs) -> Result<ProjectUnits> {
    let o = super::compose::LoadOptions::from_process(a.files.clone(), a.project.clone(), vec![])?;
    let p = super::compose::load(&o)?;
    for w in &p.warnings {
        eprintln!("{w}");
    }
    for w in boot_time_writers(&p) {
        eprintln!("rrun: warning: {w}");
    }
    Ok(from_project(&p))
}

/// What the units read again at each start, as the service manager's user
/// (root), that someone else could change meanwhile: the compose files,
/// the project's .env and their directories (a file there can be replaced).
/// Whoever can write them decides what runs at the next boot.
fn boot_time_writers(p: &super::compose::Project) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let mut paths: Vec<PathBuf> = p.files.clone();
    paths.push(p.dir.join(".env"));
    paths.extend(
        p.files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf)),
    );
    paths.push(p.dir.clone());
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let m = fs::metadata(&path).ok()?;
            if m.uid() != me && m.uid() != 0 {
                Some(format!(
                    "{} belongs to uid {}: that user decides what these units run (as root) at each start",
                    path.display(),
                    m.uid()
                ))
            } else if m.mode() & 0o022 != 0 {
                Some(format!(
                    "{} can be written by group or others: they decide what these units run (as root) at each start",
                    path.display()
                ))
            } else {
                None
            }
        })
        .collect()
}

/// A loaded compose project as the units need it (services in file order).
pub fn from_project(p: &super::compose::Project) -> ProjectUnits {
    let services = p
        .service_order
        .iter()
        .filter_map(|n| p.services.get(n))
        .map(|s| ServiceUnit {
            service: s.name.clone(),
            app: s.app.clone(),
            depends_on: s
                .depends_on
                .iter()
                .map(|d| (d.service.clone(), d.required))
                .collect(),
            one_shot: s.one_shot,
        })
        .collect();
    ProjectUnits {
        name: p.name.clone(),
        files: p.files.clone(),
        services,
    }
}

/// `rrun app unit ...`.
pub fn main(paths: &Paths, a: &UnitArgs) -> Result<i32> {
    let units = generate(paths, a)?;
    let dir = match (&a.output, a.install) {
        (Some(d), _) => d.clone(),
        (None, true) => install_dir(a.user)?,
        (None, false) => {
            let mut first = true;
            for u in &units {
                if !first {
                    println!();
                }
                first = false;
                println!("# {}", u.file);
                print!("{}", u.text);
            }
            return Ok(0);
        }
    };
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Names can meet: project a's service b-c and project a-b's service c
    // are both rrun-a-b-c.service, and project app's service x is
    // rrun-app-x.service like the app x's. A file there that is not this
    // unit (its header line says what it is) is someone else's: refused,
    // before anything is written.
    for u in &units {
        let path = dir.join(&u.file);
        let Ok(old) = fs::read_to_string(&path) else {
            continue;
        };
        let first = |t: &str| t.lines().next().unwrap_or("").to_string();
        if first(&old) != first(&u.text) {
            bail!(
                "{} exists and is another unit ({}): remove it first, or name the project otherwise (-p)",
                path.display(),
                first(&old)
            );
        }
    }
    for u in &units {
        let path = dir.join(&u.file);
        fs::write(&path, &u.text).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    if a.install {
        let mut cmd = std::process::Command::new("systemctl");
        if a.user {
            cmd.arg("--user");
        }
        let user = if a.user { " --user" } else { "" };
        let why = match cmd.arg("daemon-reload").output() {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .map(str::to_string)
                    .unwrap_or_else(|| o.status.to_string()),
            ),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = why {
            bail!(
                "systemctl{user} daemon-reload: {why} (is systemd running?): the units are written, systemd has not read them"
            );
        }
        let main = units
            .iter()
            .find(|u| u.file.ends_with(".target"))
            .unwrap_or(&units[0]);
        eprintln!(
            "start now and at boot: systemctl{user} enable --now {}",
            main.file
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::cli::Settings;

    fn ctx() -> Ctx {
        Ctx {
            rrun: "/usr/bin/rrun".into(),
            app_root: "/var/lib/rrun/app".into(),
            user: false,
        }
    }

    #[test]
    fn quoting_as_systemd_splits() {
        assert_eq!(quote("plain-1.2/x:y=z"), "plain-1.2/x:y=z");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("100%"), "100%%");
        assert_eq!(quote("$HOME"), "$$HOME");
        assert_eq!(quote("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(quote("a\\b"), "\"a\\\\b\"");
        assert_eq!(quote(";"), "\";\"");
        assert_eq!(quote("it's"), "\"it\\'s\"");
    }

    #[test]
    fn app_unit_runs_the_app_with_its_settings() {
        let s = Settings {
            health_cmd: Some("test -e /ready".into()),
            health_interval: Some("1s".into()),
            health_retries: Some("3".into()),
            publish: vec!["8080:80".into()],
            stop_timeout: Some(7),
            ..Default::default()
        };
        let spec = AppSpec::from_args("web", "/srv/web.tar", &["echo".into(), "$x 5%".into()], &s)
            .unwrap();
        let u = app_unit(&ctx(), &spec);
        assert_eq!(u.file, "rrun-app-web.service");
        let t = &u.text;
        for want in [
            "Type=notify\n",
            "NotifyAccess=all\n",
            "Delegate=yes\n",
            "KillMode=mixed\n",
            "ExecStartPre=-/usr/bin/rrun app --app-root /var/lib/rrun/app rm -f web\n",
            "ExecStop=/usr/bin/rrun app --app-root /var/lib/rrun/app stop web\n",
            "ExecStopPost=-/usr/bin/rrun app --app-root /var/lib/rrun/app rm -f web\n",
            "TimeoutStopSec=27\n",
            "WantedBy=multi-user.target\n",
            " --publish 8080:80 ",
            " /srv/web.tar echo \"$$x 5%%\"\n",
        ] {
            assert!(t.contains(want), "{want:?} not in\n{t}");
        }
        assert!(t.contains("ExecStart=/usr/bin/rrun app --app-root /var/lib/rrun/app run -d --sd-notify --name web "));
        // Start period 0 + (1s + 30s) * 4 + 2s, + 1, + the import's 120.
        assert!(t.contains("TimeoutStartSec=247\n"), "{t}");
    }

    #[test]
    fn project_units_order_and_kinds() {
        let app = |n: &str| AppSpec::from_args(n, "/i.tar", &[], &Settings::default()).unwrap();
        let p = ProjectUnits {
            name: "shop".into(),
            files: vec!["/srv/shop/compose.yaml".into()],
            services: vec![
                ServiceUnit {
                    service: "db".into(),
                    app: app("shop-db"),
                    depends_on: vec![],
                    one_shot: false,
                },
                ServiceUnit {
                    service: "migrate".into(),
                    app: app("shop-migrate"),
                    depends_on: vec![("db".into(), true)],
                    one_shot: true,
                },
                ServiceUnit {
                    service: "web".into(),
                    app: app("shop-web"),
                    depends_on: vec![("db".into(), true), ("migrate".into(), false)],
                    one_shot: false,
                },
            ],
        };
        let units = project_units(&ctx(), &p);
        let files: Vec<&str> = units.iter().map(|u| u.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "rrun-shop-db.service",
                "rrun-shop-migrate.service",
                "rrun-shop-web.service",
                "rrun-shop.target"
            ]
        );
        let web = &units[2].text;
        assert!(web.contains("Requires=rrun-shop-db.service\nAfter=rrun-shop-db.service\n"));
        assert!(web.contains("Wants=rrun-shop-migrate.service\nAfter=rrun-shop-migrate.service\n"));
        assert!(web.contains("PartOf=rrun-shop.target\n"));
        assert!(web.contains(
            "ExecStart=/usr/bin/rrun app --app-root /var/lib/rrun/app compose -f /srv/shop/compose.yaml -p shop up --no-deps --sd-notify web\n"
        ));
        assert!(
            web.contains("ExecStop=/usr/bin/rrun app --app-root /var/lib/rrun/app stop shop-web\n")
        );
        assert!(
            units[1]
                .text
                .contains("Type=oneshot\nRemainAfterExit=yes\n")
        );
        assert!(!units[1].text.contains("Type=notify"));
        let target = &units[3].text;
        assert!(target.contains(
            "Wants=rrun-shop-db.service rrun-shop-migrate.service rrun-shop-web.service\n"
        ));
        assert!(target.contains("WantedBy=multi-user.target\n"));
        let user = Ctx {
            user: true,
            ..ctx()
        };
        assert!(
            project_units(&user, &p)[3]
                .text
                .contains("WantedBy=default.target\n")
        );
    }

    #[test]
    fn relative_sources_are_told_apart() {
        for ok in [
            "/srv/a.tar",
            "oci:/srv/l:v1",
            "oci-archive:/a.tar",
            "docker-archive:/d.tar",
        ] {
            assert!(source_is_absolute(ok), "{ok}");
        }
        for bad in ["a.tar", "./a.tar", "oci:layout:v1", "oci-archive:../a.tar"] {
            assert!(!source_is_absolute(bad), "{bad}");
        }
    }

    #[test]
    fn serve_unit_keeps_apps_alive_when_stopped() {
        let u = serve_unit(&ctx(), Some("127.0.0.1:9780"));
        assert_eq!(u.file, "rrun-app-serve.service");
        assert!(u.text.contains("KillMode=process\n"));
        assert!(u.text.contains(
            "ExecStart=/usr/bin/rrun app --app-root /var/lib/rrun/app serve --listen 127.0.0.1:9780 --token-file /var/lib/rrun/app/serve.token\n"
        ));
        // What apps started from the page would inherit for good.
        for k in [
            "NoNewPrivileges",
            "PrivateTmp",
            "ProtectHome",
            "ProtectSystem",
            "PrivateDevices",
        ] {
            assert!(!u.text.contains(k), "{k} in the serve unit");
        }
    }
}
