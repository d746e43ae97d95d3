// Records the commit and compiler for `rrun --version`, when known.
use std::process::Command;

fn main() {
    let out = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(c) = out("git", &["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo:rustc-env=RRUN_COMMIT={c}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Some(v) = out(&rustc, &["--version"]) {
        println!("cargo:rustc-env=RRUN_RUSTC={v}");
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
}
