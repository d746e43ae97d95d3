// Records the commit and compiler for `rrun --version`, and builds the
// built-in init (init/, a separate no-std crate) that rrun embeds.
use std::path::{Path, PathBuf};
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
    build_init();
    order_hot_functions();
}

/// Release builds put the functions a container's lifecycle runs at the
/// start of .text, in the order of scripts/hot-functions.txt (made by
/// scripts/hot-order.py): every rrun process maps its code by page faults,
/// and packed together the code it runs takes fewer faults and fewer
/// resident pages (docs/bench.md, Profile). Names the list has and the
/// binary lacks (code changed since the list was made) are skipped, hence
/// no warnings. The flag is lld's, the linker rustc uses for this target.
fn order_hot_functions() {
    println!("cargo:rerun-if-changed=scripts/hot-functions.txt");
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let list = manifest_dir.join("scripts").join("hot-functions.txt");
    if list.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=rrun=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=rrun=-Wl,--no-warn-symbol-ordering");
    }
}

/// Builds rrun-init (and rrun-monitor) and hands its path to the compiler (RRUN_INIT_BIN),
/// which embeds it: the init is part of rrun, never a file to find.
///
/// It is a separate cargo build because the init must be compiled without
/// std, and one package's dependencies are unified: serde, serde_json and
/// the rest are std-enabled for rrun. It is always an optimised build (its
/// size is paid in every container that runs it), linked static and
/// non-PIE with no C runtime at all (see init/src/rt.rs).
fn build_init() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let init_dir = manifest_dir.join("init");
    for p in [
        "init/Cargo.toml",
        "init/Cargo.lock",
        "init/src",
        "src/init/plan.rs",
        "src/init/policy.rs",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("target"))
        .join("init");
    let triple = "x86_64-unknown-linux-gnu";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&init_dir)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            triple,
            "--target-dir",
        ])
        .arg(&target_dir);
    // Nothing of this build's own settings may leak into the nested one
    // (flags, wrappers such as clippy's, the package's metadata).
    let keep = ["CARGO_HOME", "CARGO_MAKEFLAGS", "CARGO_NET_OFFLINE"];
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        let cargo_var = k.starts_with("CARGO_") && !keep.contains(&k);
        let rust_var = matches!(
            k,
            "RUSTFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTDOCFLAGS"
        ) || k.starts_with("RUSTC_LINKER");
        if cargo_var || rust_var {
            cmd.env_remove(k);
        }
    }
    let flags = [
        "-Crelocation-model=static",
        "-Ctarget-feature=+crt-static",
        "-Clink-arg=-nostartfiles",
        "-Clink-arg=-nostdlib",
    ];
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    let result = cmd.output().expect("running cargo for the built-in init");
    if !result.status.success() {
        panic!(
            "building the built-in init (init/) failed:\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    let release = target_dir.join(triple).join("release");
    // rrun-monitor (init/src/bin/): the per-app host-side monitor of
    // `rrun app`, built the same way from the same crate.
    for (bin, var) in [
        ("rrun-init", "RRUN_INIT_BIN"),
        ("rrun-monitor", "RRUN_MONITOR_BIN"),
    ] {
        let bin = release.join(bin);
        assert!(Path::new(&bin).is_file(), "no {}", bin.display());
        println!("cargo:rustc-env={var}={}", bin.display());
    }
}
