//! Terminals: the pty master handed over a console socket (create and
//! exec), its size, the container's stdio and /dev/console on the slave,
//! input and output through the master, and the foreground relay.

#[macro_use]
mod common;

use common::*;
use serde_json::json;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The master side of a pty
// ---------------------------------------------------------------------------

struct Pty {
    master: File,
    /// Everything read so far.
    seen: Vec<u8>,
    eof: bool,
}

impl Pty {
    fn new(master: File) -> Pty {
        Pty {
            master,
            seen: Vec::new(),
            eof: false,
        }
    }

    /// The output so far, with the terminal's CRLF turned into LF.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).replace("\r\n", "\n")
    }

    /// Read until the output contains `needle` (panics after a timeout or
    /// at end of output without it); returns the whole output so far.
    #[track_caller]
    fn read_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STATUS_TIMEOUT;
        while !self.text().contains(needle) {
            assert!(
                !self.eof,
                "pty closed before {needle:?}; read {:?}",
                self.text()
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?} on the pty; read {:?}",
                self.text()
            );
            self.read_some(Duration::from_millis(50));
        }
        self.text()
    }

    /// One poll + read; EIO (slave closed) and 0 count as end of output.
    fn read_some(&mut self, wait: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
        if r <= 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) => self.eof = true,
            Ok(n) => self.seen.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => self.eof = true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read from pty master: {e}"),
        }
    }

    fn write(&mut self, s: &str) {
        self.master
            .write_all(s.as_bytes())
            .expect("write to master");
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A bundle whose process is a terminal of the given size running `script`.
fn tty_bundle(script: &str, size: Option<(u32, u32)>) -> Bundle {
    Bundle::new().sh(script).with(|v| {
        v["process"]["terminal"] = json!(true);
        if let Some((h, w)) = size {
            v["process"]["consoleSize"] = json!({ "height": h, "width": w });
        }
    })
}

/// The line after the line equal to `marker` in `text`.
#[track_caller]
fn after(text: &str, marker: &str) -> String {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.trim() == marker)
        .unwrap_or_else(|| panic!("{marker:?} not in {text:?}"));
    lines
        .next()
        .unwrap_or_else(|| panic!("nothing after {marker:?} in {text:?}"))
        .trim()
        .to_string()
}

/// N of a "/dev/pts/N" line.
#[track_caller]
fn pts_number(tty: &str) -> u32 {
    tty.strip_prefix("/dev/pts/")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a /dev/pts/N tty: {tty:?}"))
}

/// Check a busybox `ls -l` line is a char device MAJOR, MINOR.
#[track_caller]
fn assert_char_dev(ls_line: &str, major: u32, minor: u32) {
    assert!(ls_line.starts_with('c'), "not a char device: {ls_line:?}");
    let tok: Vec<&str> = ls_line.split_whitespace().collect();
    let i = tok
        .iter()
        .position(|t| *t == format!("{major},"))
        .unwrap_or_else(|| panic!("major {major} not in {ls_line:?}"));
    assert_eq!(
        tok.get(i + 1).copied(),
        Some(minor.to_string().as_str()),
        "minor of {ls_line:?}"
    );
}

/// The script printing what the terminal tests check, between markers.
const TTY_REPORT: &str = "echo =tty; tty; echo =size; stty size; \
     echo =console; ls -l /dev/console; \
     echo =fds; for f in 0 1 2; do readlink /proc/$$/fd/$f; done | sort -u; \
     echo =ctty; cut -d' ' -f7 /proc/$$/stat; echo =done";

/// Check the report of TTY_REPORT: stdio and the controlling terminal are
/// the pty slave, and so is /dev/console when `console` (it belongs to the
/// container's init: an exec'd terminal is another pty); `size` is what
/// stty reports.
#[track_caller]
fn check_report(out: &str, size: Option<&str>, console: bool) {
    let tty = after(out, "=tty");
    let n = pts_number(&tty);
    if let Some(size) = size {
        assert_eq!(after(out, "=size"), size, "pty size\n{out}");
    }
    if console {
        assert_char_dev(&after(out, "=console"), 136, n);
    }
    assert_eq!(
        after(out, "=fds"),
        tty,
        "stdio is not (only) the pty\n{out}"
    );
    // tty_nr of /proc/PID/stat: major 136 << 8 | minor (minor < 256).
    assert_eq!(
        after(out, "=ctty"),
        (136 * 256 + n).to_string(),
        "controlling terminal\n{out}"
    );
}

// ---------------------------------------------------------------------------
// create --console-socket
// ---------------------------------------------------------------------------

#[test]
fn create_console_socket_passes_master_with_size() {
    let mut sock = ConsoleSocket::new();
    let c = Container::new(tty_bundle(TTY_REPORT, Some((33, 99))));
    c.create_with(&["--console-socket", &sock.arg()]).ok();
    let (fd, name) = sock.receive();
    let mut pty = Pty::new(File::from(fd));
    // The payload names the terminal (runc sends the master's name).
    assert!(!name.trim_matches('\0').is_empty(), "empty name payload");
    assert_eq!(c.status(), "created");
    c.start().ok();
    let out = pty.read_until("=done\n");
    check_report(&out, Some("33 99"), true);
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn console_input_reaches_the_container() {
    let mut sock = ConsoleSocket::new();
    let c = Container::new(tty_bundle(
        "echo ready; read x; echo got:$x; read y; echo got:$y",
        None,
    ));
    c.create_with(&["--console-socket", &sock.arg()]).ok();
    let mut pty = Pty::new(File::from(sock.receive().0));
    c.start().ok();
    pty.read_until("ready\n");
    pty.write("hello tty\n");
    pty.read_until("got:hello tty\n");
    pty.write("second\n");
    let out = pty.read_until("got:second\n");
    // The line discipline echoes the input.
    assert!(out.contains("hello tty\n"), "{out:?}");
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn ctrl_c_on_the_master_interrupts_the_container() {
    let mut sock = ConsoleSocket::new();
    let c = Container::new(tty_bundle(
        "trap 'echo got INT; exit 0' INT; echo ready; while true; do sleep 0.05; done",
        None,
    ));
    c.create_with(&["--console-socket", &sock.arg()]).ok();
    let mut pty = Pty::new(File::from(sock.receive().0));
    c.start().ok();
    pty.read_until("ready\n");
    pty.write("\x03");
    pty.read_until("got INT\n");
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn terminal_without_console_socket_fails_on_create() {
    let c = Container::new(tty_bundle("echo never", None));
    fs::create_dir_all(&c.root).unwrap();
    let o = c.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["console", "socket", "tty", "terminal"]);
    let left: Vec<_> = fs::read_dir(&c.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "state root not empty: {left:?}");
    c.assert_clean();
}

#[test]
fn console_socket_that_does_not_exist_fails() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.sock");
    let c = Container::new(tty_bundle("echo never", None));
    let o = c.create_with(&["--console-socket", &missing.to_string_lossy()]);
    o.failed().stderr_is_short_error();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// exec -t
// ---------------------------------------------------------------------------

/// A running container (no terminal) whose init is `sleep 30`.
#[track_caller]
fn running() -> Container {
    let c = Container::new(Bundle::new().args(&["sleep", "30"]));
    c.create().ok();
    c.start().ok();
    c.wait_status("running");
    c
}

/// `exec -t -d --console-socket S --pid-file F FLAGS ID COMMAND`; returns
/// the pty and the exec'd host pid (remembered by the guard).
#[track_caller]
fn exec_tty(c: &Container, flags: &[&str], command: &[&str]) -> (Pty, i32) {
    let mut sock = ConsoleSocket::new();
    let s = sock.arg();
    let pid_file = c.bundle.file(&format!("exec-{}.pid", unique_name()));
    let pf = pid_file.to_string_lossy().into_owned();
    // runc refuses a console socket unless it detaches: -d works for both.
    let mut args = vec![
        "exec",
        "-t",
        "-d",
        "--console-socket",
        &s,
        "--pid-file",
        &pf,
    ];
    args.extend_from_slice(flags);
    args.push(&c.id);
    args.extend_from_slice(command);
    c.rrun(&args).ok();
    let pty = Pty::new(File::from(sock.receive().0));
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("pid file {}: {e}", pid_file.display()))
        .trim()
        .parse()
        .expect("pid in pid file");
    c.remember(pid);
    (pty, pid)
}

#[test]
fn exec_tty_console_socket() {
    let c = running();
    let script = format!("{TTY_REPORT}; read x; echo got:$x");
    let (mut pty, pid) = exec_tty(&c, &[], &["sh", "-c", &script]);
    let out = pty.read_until("=done\n");
    check_report(&out, None, false);
    pty.write("from-master\n");
    pty.read_until("got:from-master\n");
    assert!(
        poll(STATUS_TIMEOUT, || (!pid_alive(pid)).then_some(())).is_some(),
        "exec'd process {pid} did not end"
    );
    // The container goes on.
    assert_eq!(c.status(), "running");
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn exec_tty_process_json_console_size() {
    let c = running();
    let process = json!({
        "terminal": true,
        "consoleSize": { "height": 20, "width": 70 },
        "user": { "uid": 0, "gid": 0 },
        "args": ["sh", "-c", TTY_REPORT],
        "env": ["PATH=/bin:/usr/bin", "TERM=xterm"],
        "cwd": "/"
    });
    let p = c.bundle.file("process.json");
    fs::write(&p, process.to_string()).unwrap();
    let (mut pty, _) = exec_tty(&c, &["--process", &p.to_string_lossy()], &[]);
    let out = pty.read_until("=done\n");
    check_report(&out, Some("20 70"), false);
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn exec_tty_flags_take_the_config_console_size() {
    // Without --process, exec starts from the container's process (runc's
    // getProcess copies it whole), consoleSize included.
    let b = Bundle::new().args(&["sleep", "30"]).with(|v| {
        v["process"]["consoleSize"] = json!({ "height": 33, "width": 101 });
    });
    let c = Container::new(b);
    c.create().ok();
    c.start().ok();
    c.wait_status("running");
    let (mut pty, _) = exec_tty(&c, &[], &["sh", "-c", TTY_REPORT]);
    let out = pty.read_until("=done\n");
    check_report(&out, Some("33 101"), false);
    c.delete_force().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Foreground relay (rrun's own stdio is a terminal)
// ---------------------------------------------------------------------------

/// Run `COMMAND` under `script` (util-linux) so that it has a terminal;
/// `input` is fed to script's stdin. Returns script's output.
#[track_caller]
fn under_script(command: &str, input: &str) -> Output {
    use std::os::unix::process::ExitStatusExt;
    let mut out = tempfile::tempfile().unwrap();
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(out.try_clone().unwrap());
    let line = format!("script -qec {command:?} /dev/null");
    let mut child = cmd.spawn().expect("spawn script");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    // Keep stdin open until the command ends: script stops at its EOF.
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let _ = stdin.write_all(input.as_bytes());
        let _ = wait_done.recv_timeout(TIMEOUT);
        drop(stdin);
    });
    let st = wait_child(&mut child, TIMEOUT, &line);
    let _ = done.send(());
    let _ = writer.join();
    let mut text = Vec::new();
    use std::io::{Seek, SeekFrom};
    out.seek(SeekFrom::Start(0)).unwrap();
    out.read_to_end(&mut text).unwrap();
    Output {
        cmdline: line,
        code: st.code(),
        signal: st.signal(),
        stdout: String::from_utf8_lossy(&text).replace("\r\n", "\n"),
        stderr: String::new(),
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

#[test]
fn foreground_run_relays_the_terminal() {
    require!(
        have_cmd("script"),
        "script (util-linux/bsdutils) not installed"
    );
    let c = Container::new(tty_bundle(
        &format!("{TTY_REPORT}; read x; echo got:$x; exit 3"),
        Some((33, 99)),
    ));
    c.bundle.write();
    // The relay gives the container's pty the size of rrun's own terminal
    // (as runc does), so give that one a size of its own.
    let cmdline = format!(
        "stty rows 44 cols 111; {} --root {} run --bundle {} {}",
        shell_quote(&rrun_bin()),
        shell_quote(&c.root),
        shell_quote(c.bundle.path()),
        c.id
    );
    let o = under_script(&cmdline, "typed-in\n");
    assert_eq!(o.code, Some(3), "{o}");
    check_report(&o.stdout, Some("44 111"), true);
    assert!(o.stdout.contains("got:typed-in\n"), "{o}");
    c.assert_clean();
}

#[test]
fn foreground_exec_tty_relays_the_terminal() {
    require!(
        !is_runc(),
        "runc 1.1's foreground exec -t leaves the process without the caller's terminal size (stty fails)"
    );
    require!(
        have_cmd("script"),
        "script (util-linux/bsdutils) not installed"
    );
    let c = running();
    let cmdline = format!(
        "stty rows 44 cols 111; {} --root {} exec -t {} sh -c {}",
        shell_quote(&rrun_bin()),
        shell_quote(&c.root),
        c.id,
        shell_quote(Path::new(&format!(
            "{TTY_REPORT}; read x; echo got:$x; exit 4"
        )))
    );
    let o = under_script(&cmdline, "exec-input\n");
    assert_eq!(o.code, Some(4), "{o}");
    check_report(&o.stdout, Some("44 111"), false);
    assert!(o.stdout.contains("got:exec-input\n"), "{o}");
    assert_eq!(c.status(), "running");
    c.delete_force().ok();
    c.assert_clean();
}
