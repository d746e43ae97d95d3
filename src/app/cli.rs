//! `rrun app ...`: the app manager's command line (clap derive). Names and
//! short flags follow `docker run`/`docker ps` where they exist, so a
//! Docker user's fingers work.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
#[command(about = "Run images as managed, networked, logged apps (no daemon)")]
pub struct AppArgs {
    /// Where apps, images and networks are kept [default:
    /// /var/lib/rrun/app, or $RRUN_APP_ROOT]
    #[arg(long = "app-root", global = true, value_name = "DIR")]
    pub app_root: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AppCommand,
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Run an image as an app (again with a new image: upgrade it)
    Run(Box<RunArgs>),
    /// List apps
    #[command(alias = "ps")]
    Ls(LsArgs),
    /// Print an app's log
    Logs(LogsArgs),
    /// Stop an app (its settings, image and log stay)
    Stop(StopArgs),
    /// Start a stopped app
    Start(StartArgs),
    /// Stop and start an app
    Restart(StopArgs),
    /// Remove an app and everything it holds
    Rm(RmArgs),
    /// Print an app's settings and state as JSON
    Inspect(NamesArg),
    /// Change an app's settings: resources live, the rest by recreating it
    Update(Box<UpdateArgs>),
    /// Print an app's events (exits, restarts, upgrades) as JSON lines
    Events(EventsArgs),
    /// List the images in the store
    Images(ImagesArgs),
    /// Remove images and layers no app uses
    Prune,
    /// Networks: create, ls, rm
    #[command(subcommand)]
    Network(NetworkCommand),
    /// systemd units for apps, a compose project, or the status page
    Unit(Box<super::unit::UnitArgs>),
    /// Projects of several apps from a compose file: up, down, ps, logs,
    /// restart, config
    Compose(super::compose::args::ComposeArgs),
    /// `compose up`: create and start a compose file's services in order
    Up(Box<super::compose::args::UpAlias>),
    /// `compose down`: stop and remove a compose file's services
    Down(Box<super::compose::args::DownAlias>),
    /// `compose config`: print the resolved compose file
    Config(super::compose::args::ConfigAlias),
    /// Wait until apps are healthy, running or exited
    Wait(super::compose::wait::WaitArgs),
    /// Serve the apps' status page, /metrics and /api in the foreground
    Serve(super::serve::ServeArgs),
    /// The monitor's helper: creates and starts an app's container
    #[command(name = "_spawn", hide = true)]
    Spawn(SpawnArgs),
}

/// Everything that makes up an app, shared by `run` and `update`.
#[derive(Args, Debug, Clone, Default)]
pub struct Settings {
    /// KEY=VALUE added to the environment (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A file of KEY=VALUE lines (# comments, blank lines skipped)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Publish a port: [IP:]HOST:CONTAINER[/tcp|udp] (repeatable)
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// Mount SRC (a host path, or a volume name) at DST: SRC:DST[:ro]
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Mount an empty tmpfs at DST (DST[:size=N])
    #[arg(long = "tmpfs", value_name = "DST")]
    pub tmpfs: Vec<String>,
    /// bridge (the default network rrun0), host, none, or a network's name
    #[arg(long)]
    pub network: Option<String>,
    /// Memory limit (e.g. 256m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPUs (e.g. 0.5, 2)
    #[arg(long)]
    pub cpus: Option<String>,
    /// Most processes the app may have
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// USER[:GROUP] (names resolved in the image)
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// The image's Entrypoint replaced: JSON array or one program
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// A read-only root filesystem
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy: no, always, on-failure[:N], unless-stopped
    #[arg(long)]
    pub restart: Option<String>,
    /// First delay before a restart (default 100ms)
    #[arg(long = "restart-delay", value_name = "DURATION")]
    pub restart_delay: Option<String>,
    /// Ceiling of the restart delay (default 30s)
    #[arg(long = "restart-max-delay", value_name = "DURATION")]
    pub restart_max_delay: Option<String>,
    /// Give up after more than BURST starts in INTERVAL (e.g. 5/1m)
    #[arg(long = "restart-limit", value_name = "BURST/INTERVAL")]
    pub restart_limit: Option<String>,
    /// Health check: a shell command, or a JSON array (["CMD", ...] or
    /// ["CMD-SHELL", "..."] as Docker takes them)
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub health_cmd: Option<String>,
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub health_interval: Option<String>,
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    #[arg(long = "health-retries")]
    pub health_retries: Option<String>,
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Signal that stops the app (default: the image's, else SIGTERM)
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL (default 10)
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u64>,
    /// Rotate the log at this size (default 10m)
    #[arg(long = "log-max-size", value_name = "SIZE")]
    pub log_max_size: Option<String>,
    /// Log files kept, the current one included (default 5)
    #[arg(long = "log-max-files", value_name = "N")]
    pub log_max_files: Option<u32>,
    /// KEY=VALUE label (repeatable)
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Hostname (default: the app's name)
    #[arg(long)]
    pub hostname: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The app's name (default: derived from the image)
    #[arg(long)]
    pub name: Option<String>,
    /// Start it and return (else: its output here, Ctrl-C stops it)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// On an upgrade, keep the new image even if it never gets healthy
    #[arg(long = "no-rollback")]
    pub no_rollback: bool,
    /// Under systemd (Type=notify): tell it READY, with the app's monitor
    /// as the main process, once the app is healthy (or running)
    #[arg(long = "sd-notify", requires = "detach")]
    pub sd_notify: bool,
    #[command(flatten)]
    pub settings: Settings,
    /// oci:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:REF],
    /// a rootfs tarball, or a directory
    pub source: String,
    /// Replaces the image's Cmd
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Stopped apps too
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing what the app writes
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines since a time (RFC 3339) or for a duration (10m, 2h)
    #[arg(long)]
    pub since: Option<String>,
    /// Only the last N lines
    #[arg(short = 'n', long)]
    pub tail: Option<usize>,
    /// Prefix each line with its time
    #[arg(short = 't', long)]
    pub timestamps: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NamesArg {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Under systemd (Type=notify): tell it READY, with the app's monitor
    /// as the main process, once the app is healthy (or running)
    #[arg(long = "sd-notify")]
    pub sd_notify: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Stop it first if it runs (else a running app is refused)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Only apps of this compose project (labelled so); another app of the
    /// same name is left alone, with a warning (the compose units use it)
    #[arg(long = "if-project", value_name = "PROJECT")]
    pub if_project: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub settings: Settings,
    /// Remove these environment variables (repeatable)
    #[arg(long = "env-rm", value_name = "KEY")]
    pub env_rm: Vec<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Keep printing new events
    #[arg(short = 'f', long)]
    pub follow: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a bridge network
    Create {
        /// The subnet (e.g. 10.89.3.0/24; default: a free one)
        #[arg(long)]
        subnet: Option<String>,
        name: String,
    },
    /// List networks
    Ls {
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Remove networks no app uses
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct SpawnArgs {
    /// How the previous container's init ended: exit:N or signal:N
    #[arg(long = "after-exit")]
    pub after_exit: Option<String>,
    pub name: String,
}
