//! rrun: an OCI container runtime. main parses the command line, runs the
//! command, and turns an error into one stderr line, a log line (JSON with
//! --log-format json) and exit status 1.

extern crate alloc;

mod app;
mod cgroups;
mod cli;
mod commands;
mod hooks;
mod image;
mod init;
mod log;
mod namespaces;
mod process;
mod rootfs;
mod security;
mod spec;
mod state;
mod sys;

use clap::Parser;

fn print_version() {
    println!("rrun version {}", env!("CARGO_PKG_VERSION"));
    println!(
        "commit: {}",
        option_env!("RRUN_COMMIT").unwrap_or("unknown")
    );
    println!("spec: {}", spec::OCI_VERSION);
    println!("rust: {}", option_env!("RRUN_RUSTC").unwrap_or("unknown"));
    println!("seccomp: seccompiler (x86_64)");
}

/// Commands whose processes enter containers run from a read-only clone of
/// the rrun binary: /proc/<pid>/exe of any rrun process inside a container
/// then leads to a read-only mount, so even a container with
/// CAP_SYS_PTRACE cannot reopen the host binary for writing
/// (runc CVE-2019-5736). One extra execve, only for these commands; skipped
/// when not privileged (rootless), where open_tree is not allowed.
fn reexec_from_readonly_clone() {
    const MARK: &str = "_RRUN_RO_EXEC";
    if std::env::var_os(MARK).is_some() {
        sys::remove_env(MARK);
        return;
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // `rrun app ...` enters containers only in the monitor's helper; the
    // other app commands need the host path of the binary (for the helper).
    let enters = if args.iter().any(|a| a == "app") {
        args.iter().any(|a| a == "_spawn")
    } else {
        args.iter()
            .any(|a| a == "create" || a == "run" || a == "exec")
    };
    if !enters || !nix::unistd::geteuid().is_root() {
        return;
    }
    let Ok(fd) = sys::readonly_clone(std::path::Path::new("/proc/self/exe")) else {
        return;
    };
    let cargs: Vec<std::ffi::CString> = std::env::args_os()
        .filter_map(|a| std::ffi::CString::new(a.into_encoded_bytes()).ok())
        .collect();
    let mut cenv: Vec<std::ffi::CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            std::ffi::CString::new(kv).ok()
        })
        .collect();
    // Tells the re-exec'd rrun it already runs from the clone.
    cenv.push(std::ffi::CString::new(format!("{MARK}=1")).expect("no NUL"));
    let err = sys::exec_fd(&fd, &cargs, &cenv);
    // Going on from the host binary is still correct, only less hardened.
    eprintln!("rrun: warning: cannot re-exec from a read-only clone: {err}");
}

fn main() {
    reexec_from_readonly_clone();
    // Like any command-line tool (and runc), die quietly when stdout is a
    // closed pipe (`rrun state x | head -1`) instead of panicking in println.
    sys::default_sigpipe();
    let cli = cli::Cli::parse();
    if cli.version {
        print_version();
        return;
    }
    log::init(cli.log.as_deref(), cli.log_format, cli.debug);
    // runc's exec exits 255 when the process could not be started; engines
    // tell that apart from the process's own exit status.
    let fail_code = if matches!(cli.command, Some(cli::Command::Exec(_))) {
        255
    } else {
        1
    };
    // The app manager is a layer above the runtime: only main knows both.
    let result = match &cli.command {
        Some(cli::Command::App(a)) => app::main(a),
        _ => commands::dispatch(&cli),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let msg = log::error_line(&e);
            if log::to_file() {
                log::error(&msg);
                eprintln!("rrun: {msg}");
            } else if cli.log_format == log::Format::Json {
                log::error(&msg);
            } else {
                eprintln!("rrun: {msg}");
            }
            fail_code
        }
    };
    std::process::exit(code);
}
