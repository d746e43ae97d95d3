//! rrun: an OCI container runtime. main parses the command line, runs the
//! command, and turns an error into one stderr line, a log line (JSON with
//! --log-format json) and exit status 1.

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

/// One line for the whole error chain; a cause already spelled out by the
/// error above it (typed errors embed their source) is not repeated.
fn error_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg.replace('\n', " ")
}

fn main() {
    // Like any command-line tool (and runc), die quietly when stdout is a
    // closed pipe (`rrun state x | head -1`) instead of panicking in println.
    sys::default_sigpipe();
    let cli = cli::Cli::parse();
    if cli.version {
        print_version();
        return;
    }
    log::init(cli.log.as_deref(), cli.log_format, cli.debug);
    let code = match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = error_line(&e);
            if log::to_file() {
                log::error(&msg);
                eprintln!("rrun: {msg}");
            } else if cli.log_format == log::Format::Json {
                log::error(&msg);
            } else {
                eprintln!("rrun: {msg}");
            }
            1
        }
    };
    std::process::exit(code);
}
