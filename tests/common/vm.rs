//! Running a test script inside the qemu VM of scripts/vm/ (Debian's kernel
//! under TCG, an initramfs with the runtime under test): build the
//! initramfs once per runtime binary, boot it once with the script, and
//! report the script's `ok - ` / `not ok - ` lines.

use super::*;

/// A readable kernel image for the VM, as build-initramfs.sh picks it.
pub fn kernel_image() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("VM_KERNEL").filter(|k| !k.is_empty()) {
        return Some(PathBuf::from(k));
    }
    let mut v: Vec<PathBuf> = fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    v.sort();
    v.pop().filter(|p| File::open(p).is_ok())
}

/// Why the VM cannot run on this host, if it cannot.
pub fn missing() -> Option<String> {
    if !is_root() {
        return Some("needs root".into());
    }
    if !have_cmd("qemu-system-x86_64") {
        return Some("qemu-system-x86_64 missing (apt-get install qemu-system-x86)".into());
    }
    if kernel_image().is_none() {
        return Some(
            "no readable kernel image in /boot (apt-get install linux-image-amd64)".into(),
        );
    }
    ["cpio", "gzip"]
        .iter()
        .find(|t| !have_cmd(t))
        .map(|t| format!("{t} missing"))
}

/// The not-ok lines of a script's output (for a short failure summary).
pub fn failures(out: &str) -> Vec<&str> {
    out.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("not ok - "))
        .collect()
}

/// One boot of the VM running `script` (a path under scripts/vm/).
pub struct VmRun<'a> {
    /// Names the initramfs directory: target/vm-<name>-<runtime>.
    pub name: &'a str,
    pub script: &'a str,
    /// Host executables packed beside the runtime (VM_EXTRA_BINS).
    pub extra_bins: Vec<PathBuf>,
    /// Exported to the script (run.sh --env).
    pub env: Vec<(String, String)>,
    /// Extra kernel command line (run.sh's VM_APPEND), e.g. "security=selinux".
    pub kernel_args: &'a str,
    /// Seconds the VM may run.
    pub timeout_secs: u64,
}

impl VmRun<'_> {
    /// Builds the initramfs around `rrun_bin()`, boots it once and returns
    /// the console output; panics (with the failed checks and the console)
    /// when the script fails or ran no check.
    #[track_caller]
    pub fn run(&self) -> String {
        let repo = repo_dir();
        let script = repo.join(self.script);
        let builder = repo.join("scripts/vm/build-initramfs.sh");
        let runner = repo.join("scripts/vm/run.sh");
        for f in [&script, &builder, &runner] {
            assert!(f.is_file(), "{} missing", f.display());
        }
        // One initramfs per runtime binary; parallel runs serialise on a lock.
        let bin = rrun_bin();
        let flavour = bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rrun".into());
        let out_dir = target_dir().join(format!("vm-{}-{flavour}", self.name));
        fs::create_dir_all(&out_dir).unwrap();
        let lock = File::create(out_dir.with_extension("lock")).unwrap();
        lock.lock().expect("lock the VM build directory");

        let t = Instant::now();
        let extra: Vec<String> = self
            .extra_bins
            .iter()
            .map(|b| b.to_string_lossy().into_owned())
            .collect();
        let mut build = Command::new("bash");
        build
            .arg(&builder)
            .arg(&out_dir)
            .env("RRUN_BIN", &bin)
            .env("VM_EXTRA_BINS", extra.join(" "))
            .env("VM_NO_APT", "1")
            .current_dir(&repo);
        let o = run_timeout(build, Duration::from_secs(180));
        assert!(o.success(), "building the VM initramfs failed:\n{o}");
        let built = t.elapsed();

        let t = Instant::now();
        let mut run = Command::new("bash");
        run.arg(&runner)
            .env("VM_APPEND", self.kernel_args)
            .arg("--initramfs")
            .arg(out_dir.join("initramfs.cpio.gz"))
            .arg("--timeout")
            .arg(self.timeout_secs.to_string());
        for (k, v) in &self.env {
            run.arg("--env").arg(format!("{k}={v}"));
        }
        run.arg(&script).current_dir(&repo);
        let o = run_timeout(run, Duration::from_secs(self.timeout_secs + 30));
        lock.unlock().ok();
        let console = format!("{}{}", o.stdout, o.stderr);
        let summary: Vec<&str> = console
            .lines()
            .filter(|l| l.starts_with("# ") && l.contains("passed"))
            .collect();
        let _ = writeln!(
            std::io::stderr(),
            "{} VM ({}): build {built:?}, run {:?}: {}",
            self.script,
            bin.display(),
            t.elapsed(),
            summary.join(" ")
        );
        assert!(
            o.success(),
            "{} in the VM failed (exit {:?}); failed checks:\n  {}\n\nVM output:\n{}",
            self.script,
            o.code,
            failures(&console).join("\n  "),
            console
        );
        assert!(
            console.lines().any(|l| l.starts_with("ok - ")),
            "the VM ran no checks:\n{console}"
        );
        assert!(failures(&console).is_empty(), "{console}");
        console
    }
}

/// `sh -n` (and busybox sh -n) of a VM script: a syntax error would only
/// show up inside the VM.
#[track_caller]
pub fn check_syntax(script: &str) {
    let script = repo_dir().join(script);
    let mut c = Command::new("sh");
    c.arg("-n").arg(&script);
    run_timeout(c, TIMEOUT).ok();
    if have_cmd("busybox") {
        let mut c = Command::new("busybox");
        c.arg("sh").arg("-n").arg(&script);
        run_timeout(c, TIMEOUT).ok();
    }
}
