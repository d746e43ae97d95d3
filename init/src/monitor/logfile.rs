//! The app's log file as the monitor writes it: one line per line of
//! output, `<RFC3339Nano UTC> <stdout|stderr> <F|P> <text>\n` (the CRI log
//! format; P marks a piece of a line whose rest follows in the next P or F
//! line of that stream), rotated by size and count by rename.
//!
//! A line is never split across files and never written twice: rotation
//! happens between lines, and each line is in exactly one write(2) batch
//! to exactly one file.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use linux_raw_sys::general as k;

use super::msys;
use crate::sys;

/// Lines are batched up to this size before a write(2).
const BATCH: usize = 16 << 10;

pub struct LogFile {
    path: String,
    fd: i32,
    /// Bytes in the current file (written, not counting `buf`).
    size: u64,
    max_size: u64,
    max_files: u32,
    buf: Vec<u8>,
}

fn open_log(path: &str) -> Result<(i32, u64), sys::Errno> {
    let fd = msys::open(path, k::O_WRONLY | k::O_APPEND | k::O_CREAT, 0o640)?;
    let size = msys::file_size(fd).unwrap_or(0);
    Ok((fd, size))
}

impl LogFile {
    pub fn open(path: &str, max_size: u64, max_files: u32) -> Result<LogFile, sys::Errno> {
        let (fd, size) = open_log(path)?;
        Ok(LogFile {
            path: path.into(),
            fd,
            size,
            max_size,
            max_files,
            buf: Vec::new(),
        })
    }

    /// Writes one chunk read from a stream: its complete lines as F lines,
    /// a trailing piece without a newline as a P line (written now, not
    /// held back: the log never lags the program).
    pub fn chunk(&mut self, stream: &str, data: &[u8]) {
        let ts = timestamp(msys::realtime());
        let mut rest = data;
        while !rest.is_empty() {
            let (text, tag, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], b'F', &rest[i + 1..]),
                None => (rest, b'P', &rest[rest.len()..]),
            };
            let len = ts.len() + stream.len() + text.len() + 5;
            self.make_room(len as u64);
            self.buf.extend_from_slice(ts.as_bytes());
            self.buf.push(b' ');
            self.buf.extend_from_slice(stream.as_bytes());
            self.buf.push(b' ');
            self.buf.push(tag);
            self.buf.push(b' ');
            self.buf.extend_from_slice(text);
            self.buf.push(b'\n');
            if self.buf.len() >= BATCH {
                self.flush();
            }
            rest = next;
        }
        self.flush();
        // Give back a batch buffer grown by a burst: idle, the monitor
        // keeps only what it needs.
        if self.buf.capacity() > BATCH * 2 {
            self.buf = Vec::new();
        }
    }

    /// Rotates first if a line of `len` bytes would take the file past
    /// its maximum (a file always takes at least one line).
    fn make_room(&mut self, len: u64) {
        let pending = self.size + self.buf.len() as u64;
        if self.max_size == 0 || pending == 0 || pending + len <= self.max_size {
            return;
        }
        self.flush();
        self.rotate();
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Err(e) = sys::write_all(self.fd, &self.buf) {
            crate::mlog!("writing {}: {}", self.path, msys::why(e));
        }
        self.size += self.buf.len() as u64;
        self.buf.clear();
    }

    /// ctr.log.(n-2) -> ctr.log.(n-1), ..., ctr.log -> ctr.log.1, and a new
    /// ctr.log. The oldest file is replaced by the rename onto it. With a
    /// single file there is nothing to keep: it is emptied.
    fn rotate(&mut self) {
        if self.max_files <= 1 {
            if let Err(e) = msys::ftruncate(self.fd) {
                crate::mlog!("truncating {}: {}", self.path, msys::why(e));
            }
            self.size = 0;
            return;
        }
        for i in (1..self.max_files - 1).rev() {
            let from = format!("{}.{}", self.path, i);
            let to = format!("{}.{}", self.path, i + 1);
            match msys::rename(&from, &to) {
                Ok(()) | Err(sys::Errno::ENOENT) => {}
                Err(e) => crate::mlog!("renaming {from}: {}", msys::why(e)),
            }
        }
        let first = format!("{}.1", self.path);
        if let Err(e) = msys::rename(&self.path, &first) {
            crate::mlog!("renaming {}: {}", self.path, msys::why(e));
        }
        match open_log(&self.path) {
            Ok((fd, size)) => {
                sys::close(self.fd);
                self.fd = fd;
                self.size = size;
            }
            // Keep writing to the file we have (now ctr.log.1): losing
            // lines is worse than an oversized file.
            Err(e) => crate::mlog!("opening {}: {}", self.path, msys::why(e)),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (RFC 3339, UTC, nanoseconds: fixed
/// width, so the lines sort as text).
pub fn timestamp((secs, nanos): (u64, u32)) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic
/// Gregorian calendar (the well-known era-based conversion).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}
