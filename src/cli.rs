//! The command line: runc's verbs and flags, nothing else. Engines call rrun
//! exactly as they call runc, so names, short flags and defaults match it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::log::Format;

#[derive(Parser, Debug)]
#[command(
    name = "rrun",
    about = "rrun: an OCI container runtime",
    disable_version_flag = true,
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    /// Root directory for container state (use a tmpfs) [default:
    /// /run/rrun, or $XDG_RUNTIME_DIR/rrun for an unprivileged user]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: Format,
    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver: the container's cgroup is a transient
    /// systemd unit (cgroupsPath "slice:prefix:name")
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility with runc (auto, true, false)
    #[arg(long, hide = true)]
    pub rootless: Option<String>,
    /// Accepted for compatibility with runc
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// systemd's notification socket: the container gets one of its own
    /// and `start` relays its READY=1 (as runc does with $NOTIFY_SOCKET);
    /// empty (`--notify-socket=`): none, whatever the environment says
    #[arg(
        long = "notify-socket",
        global = true,
        hide = true,
        env = "NOTIFY_SOCKET"
    )]
    pub notify_socket: Option<std::ffi::OsString>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (blocked before the user program until `start`)
    Create(CreateArgs),
    /// Run the user program of a created container
    Start(IdArg),
    /// Print the state of a container as JSON
    State(IdArg),
    /// Send a signal to a container's init (or all its processes)
    Kill(KillArgs),
    /// Delete a container and everything it holds
    Delete(DeleteArgs),
    /// Create and start a container
    Run(RunArgs),
    /// List containers
    #[command(alias = "ls")]
    List(ListArgs),
    /// Write a default config.json
    Spec(SpecArgs),
    /// Run a new process in a running container
    Exec(Box<ExecArgs>),
    /// Print the features this build supports (runtime-spec features.md)
    Features,
    /// Suspend every process of a container (cgroup freezer)
    Pause(IdArg),
    /// Resume a paused container
    Resume(IdArg),
    /// List the processes of a container
    Ps(PsArgs),
    /// Print container events: resource stats and OOM kills
    Events(EventsArgs),
    /// Change a running container's resource limits
    Update(Box<UpdateArgs>),
    /// Make a bundle (rootfs/ + config.json) from an image or rootfs tarball
    Unpack(Box<UnpackArgs>),
    /// Run images as managed apps: ports, volumes, logs, restarts (no daemon)
    App(Box<crate::app::cli::AppArgs>),
    /// Commands of runc that rrun does not offer yet
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to receive the pty master of a terminal container
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container init's host pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Move the rootfs to / and chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3 on) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Accepted for compatibility with runc
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process of the container
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill a running container first
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only the ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Where to write config.json
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a container run by an unprivileged user
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A process.json (the `process` object of config.json) to run
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Unix socket to receive the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs on the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Detach from the process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process's host pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Pass this many extra fds (from 3 on) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Exec even if the container is paused
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Sub-cgroup to join (PATH, or CONTROLLER:PATH on cgroup v1)
    #[arg(long)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// The command and its arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Arguments for ps(1) (table format), default -ef
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one stats event and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A linux.resources JSON file ("-" for stdin)
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k/m/g suffix; -1: unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited)
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "kernel-memory", allow_negative_numbers = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", allow_negative_numbers = true)]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (runc's spelling is --cpu-share)
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// oci:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:REF], or a rootfs tarball
    pub source: String,
    /// The bundle directory to create (or an existing empty one)
    pub dir: PathBuf,
    /// Replaces the image's Cmd
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Replaces the image's Entrypoint (and drops its Cmd): JSON array or one program
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// KEY=VALUE added to the environment (repeatable)
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory of the process
    #[arg(long, short = 'w')]
    pub workdir: Option<String>,
    /// USER[:GROUP] (names resolved in the image's /etc/passwd and /etc/group)
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// A bundle for an unprivileged user (user namespace, ids mapped)
    #[arg(long)]
    pub rootless: bool,
    /// Do not run rrun's built-in init as PID 1
    #[arg(long = "no-init")]
    pub no_init: bool,
    /// Restart policy: no, always, on-success, on-failure[:N], on-abnormal, on-abort
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(long = "restart-delay", value_name = "DURATION")]
    pub restart_delay: Option<String>,
    #[arg(long = "restart-max-delay", value_name = "DURATION")]
    pub restart_max_delay: Option<String>,
    #[arg(long = "restart-reset-after", value_name = "DURATION")]
    pub restart_reset_after: Option<String>,
    #[arg(long = "restart-multiplier")]
    pub restart_multiplier: Option<String>,
    #[arg(long = "restart-limit", value_name = "BURST/INTERVAL")]
    pub restart_limit: Option<String>,
    #[arg(long = "restart-success-exit", value_name = "CODES")]
    pub restart_success_exit: Option<String>,
    #[arg(long = "restart-prevent-exit", value_name = "CODES")]
    pub restart_prevent_exit: Option<String>,
    #[arg(long = "stop-timeout", value_name = "DURATION")]
    pub stop_timeout: Option<String>,
    /// Health check command (JSON array)
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub health_interval: Option<String>,
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    #[arg(long = "health-retries")]
    pub health_retries: Option<String>,
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub health_start_period: Option<String>,
}
