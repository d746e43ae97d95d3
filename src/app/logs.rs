//! Reading an app's logs (`rrun app logs`): the files the monitor writes
//! in apps/<name>/logs (ctr.log, and ctr.log.1 .. ctr.log.N, older as N
//! grows), one CRI line each: `<RFC3339Nano UTC> <stdout|stderr> <F|P>
//! <text>`. Pieces (P) are joined back into lines; stdout lines go to one
//! writer and stderr lines to the other. Following survives rotation: the
//! reader keeps the file it has open (by inode) to its end, then goes on
//! with the next newer file. It never writes to the log directory.
#![allow(dead_code)] // until the app commands (the lead's) use all of it

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FILE: &str = "ctr.log";
/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// The most of one line held while its pieces (P) are joined: an app that
/// never writes a newline would otherwise grow a follower without bound
/// (its files rotate, the joined line does not). Longer lines come out in
/// pieces of this size.
const MAX_JOINED: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the logs out: {0}")]
    Write(#[source] std::io::Error),
    #[error("--since {0:?}: not a duration (10m, 1h30m, 2d) nor a time (RFC 3339 or Unix seconds)")]
    Since(String),
}

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep reading as the app writes, until `until()` says stop.
    pub follow: bool,
    /// Only lines written at or after this time.
    pub since: Option<SystemTime>,
    /// Only the last N lines (of those `since` lets through), then follow.
    pub tail: Option<usize>,
    /// Each line starts with its time (RFC 3339, nanoseconds, UTC).
    pub timestamps: bool,
}

/// One whole line, pieces joined.
struct Line {
    stderr: bool,
    ts: String,
    text: Vec<u8>,
}

/// The lines being put together from pieces, one per stream, and where
/// whole lines go.
struct Joiner<'a> {
    o: &'a LogOptions,
    since: Option<String>,
    partial: [Option<Line>; 2],
    /// Lines held back for --tail (None: written as they come).
    held: Option<VecDeque<Line>>,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// A writer's reader is gone (EPIPE): print ends quietly.
    gone: bool,
}

impl Joiner<'_> {
    /// Takes one raw line of a log file (without its newline).
    fn feed(&mut self, raw: &[u8]) -> Result<(), LogError> {
        let mut it = raw.splitn(4, |&b| b == b' ');
        let (Some(ts), Some(stream), Some(tag)) = (it.next(), it.next(), it.next()) else {
            return Ok(());
        };
        let text = it.next().unwrap_or_default();
        let stderr = match stream {
            b"stdout" => false,
            b"stderr" => true,
            _ => return Ok(()),
        };
        let ts = String::from_utf8_lossy(ts).into_owned();
        let slot = &mut self.partial[stderr as usize];
        let line = match slot.take() {
            Some(mut l) => {
                l.text.extend_from_slice(text);
                l
            }
            None => Line {
                stderr,
                ts,
                text: text.to_vec(),
            },
        };
        if tag == b"P" && line.text.len() < MAX_JOINED {
            *slot = Some(line);
            return Ok(());
        }
        self.emit(line)
    }

    fn emit(&mut self, line: Line) -> Result<(), LogError> {
        // The timestamps are fixed-width RFC 3339 in UTC: text order is
        // time order.
        if self
            .since
            .as_ref()
            .is_some_and(|s| line.ts.as_str() < s.as_str())
        {
            return Ok(());
        }
        if let Some(held) = &mut self.held {
            held.push_back(line);
            if held.len() > self.o.tail.unwrap_or(usize::MAX) {
                held.pop_front();
            }
            return Ok(());
        }
        self.write(&line)
    }

    fn write(&mut self, line: &Line) -> Result<(), LogError> {
        if self.gone {
            return Ok(());
        }
        let w: &mut dyn Write = if line.stderr {
            &mut *self.err
        } else {
            &mut *self.out
        };
        let r = (|| {
            if self.o.timestamps {
                w.write_all(line.ts.as_bytes())?;
                w.write_all(b" ")?;
            }
            w.write_all(&line.text)?;
            w.write_all(b"\n")?;
            w.flush()
        })();
        match r {
            // The reader went away (`rrun app logs | head`): nothing more
            // to do, and nothing wrong.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.gone = true;
                Ok(())
            }
            r => r.map_err(LogError::Write),
        }
    }

    /// The end of what is there: held lines go out, and (not following)
    /// an unfinished line too.
    fn flush(&mut self, finished: bool) -> Result<(), LogError> {
        if let Some(held) = self.held.take() {
            for l in &held {
                self.write(l)?;
            }
        }
        if finished {
            for i in 0..2 {
                if let Some(l) = self.partial[i].take() {
                    self.emit(l)?;
                }
            }
        }
        Ok(())
    }
}

/// The log files oldest first: ctr.log.N .. ctr.log.1, ctr.log.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("ctr.log.")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut v: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let cur = dir.join(FILE);
    if cur.exists() {
        v.push(cur);
    }
    v
}

/// One open log file, read to its end as it grows.
struct Reader {
    path: PathBuf,
    file: File,
    ino: u64,
    /// Bytes of a line whose newline has not been written yet.
    rest: Vec<u8>,
}

impl Reader {
    fn open(path: &Path) -> Result<Option<Reader>, LogError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LogError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let ino = file
            .metadata()
            .map_err(|source| LogError::Read {
                path: path.into(),
                source,
            })?
            .ino();
        Ok(Some(Reader {
            path: path.into(),
            file,
            ino,
            rest: Vec::new(),
        }))
    }

    /// Feeds every complete line up to the current end of the file.
    fn read_all(&mut self, j: &mut Joiner) -> Result<(), LogError> {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(LogError::Read {
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            self.rest.extend_from_slice(&buf[..n]);
            let Some(last_nl) = self.rest.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let tail = self.rest.split_off(last_nl + 1);
            let whole = std::mem::replace(&mut self.rest, tail);
            for raw in whole[..whole.len() - 1].split(|&b| b == b'\n') {
                j.feed(raw)?;
            }
        }
    }
}

/// Writes the app's logs from `dir` (apps/<name>/logs) as `o` asks:
/// stdout lines to `out`, stderr lines to `err`. Following ends when
/// `until()` has returned true and everything written before that has
/// been read (the app is gone). A writer whose reader is gone (EPIPE)
/// ends it too, as success; any other write error is LogError::Write.
pub fn print(
    dir: &Path,
    o: &LogOptions,
    until: &dyn Fn() -> bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), LogError> {
    let mut j = Joiner {
        o,
        since: o.since.map(format_time),
        partial: [None, None],
        held: o.tail.map(|_| VecDeque::new()),
        out,
        err,
        gone: false,
    };
    // Everything there now, oldest first, each next file found by the
    // inode of the one before (a rotation while reading moves names, not
    // files); the newest stays open to follow.
    let mut current: Option<Reader> = None;
    catch_up(dir, &mut current, &mut j)?;
    if !o.follow {
        return j.flush(true);
    }
    j.flush(false)?;
    loop {
        // Asked before reading: once true, whatever the app wrote is in
        // the files, and one more pass reads it.
        let done = until();
        catch_up(dir, &mut current, &mut j)?;
        if done || j.gone {
            return j.flush(true);
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Reads `current` to its end, then every newer file to its end.
fn catch_up(dir: &Path, current: &mut Option<Reader>, j: &mut Joiner) -> Result<(), LogError> {
    loop {
        if let Some(r) = current {
            r.read_all(j)?;
        }
        match next_file(dir, current.as_ref())? {
            Some(next) => {
                // Rotated: what was written to it before the rotation may
                // have landed after the read above.
                if let Some(r) = current {
                    r.read_all(j)?;
                }
                *current = Some(next);
            }
            None => return Ok(()),
        }
    }
}

/// The file after `current` (by inode) once it has been rotated away, or
/// the first file when there was none. None: `current` is still ctr.log.
fn next_file(dir: &Path, current: Option<&Reader>) -> Result<Option<Reader>, LogError> {
    // A rotation renames several files one after another: a listing taken
    // in the middle of one pairs names with the wrong files. Only a
    // listing seen twice the same, and a file that is still the one
    // listed once opened, are used.
    for _ in 0..200 {
        let list = stable_listing(dir);
        let (path, ino) = match current {
            None => match list.first() {
                Some(first) => first.clone(),
                None => return Ok(None),
            },
            Some(cur) => match list.iter().position(|(_, i)| *i == cur.ino) {
                Some(i) if i + 1 == list.len() => return Ok(None),
                Some(i) => list[i + 1].clone(),
                // Rotated out of the kept files altogether (a burst): go
                // on with the oldest kept one.
                None => match list.first() {
                    Some(first) => first.clone(),
                    None => return Ok(None),
                },
            },
        };
        match Reader::open(&path)? {
            Some(r) if r.ino == ino => return Ok(Some(r)),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    Ok(None)
}

/// The log files, oldest first, with their inodes: listed until two
/// listings in a row agree (bounded).
fn stable_listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let list = || -> Vec<(PathBuf, u64)> {
        files(dir)
            .into_iter()
            .filter_map(|p| {
                let ino = fs::metadata(&p).ok()?.ino();
                Some((p, ino))
            })
            .collect()
    };
    let mut last = list();
    for _ in 0..100 {
        let now = list();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// `--since`: a duration before now ("90s", "10m", "1h30m", "2d"), an RFC
/// 3339 time ("2024-05-01T10:00:00Z", "...+02:00", fractions allowed) or
/// Unix seconds.
pub fn parse_since(s: &str) -> Result<SystemTime, LogError> {
    let bad = || LogError::Since(s.to_string());
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    if let Some(d) = parse_duration(t) {
        return SystemTime::now().checked_sub(d).ok_or_else(bad);
    }
    parse_rfc3339(t).ok_or_else(bad)
}

fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (any && num.is_empty()).then(|| Duration::from_secs(total))
}

fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
        .filter(|t| *t >= UNIX_EPOCH)
}

/// A time as the monitor writes it (RFC 3339, UTC, nanoseconds): the
/// same width everywhere, so log times compare as strings.
pub fn format_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, o: &LogOptions) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print(dir, o, &|| true, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn joins_pieces_splits_streams_and_reads_rotated_files_in_order() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("ctr.log.2"),
            "2024-01-01T00:00:00.000000000Z stdout F one\n",
        )
        .unwrap();
        fs::write(
            d.path().join("ctr.log.1"),
            "2024-01-01T00:00:01.000000000Z stdout P tw\n\
             2024-01-01T00:00:01.500000000Z stderr F oops\n",
        )
        .unwrap();
        fs::write(
            d.path().join("ctr.log"),
            "2024-01-01T00:00:02.000000000Z stdout F o\n\
             2024-01-01T00:00:03.000000000Z stdout F \n",
        )
        .unwrap();
        let (out, err) = run(d.path(), &LogOptions::default());
        assert_eq!(out, "one\ntwo\n\n");
        assert_eq!(err, "oops\n");
        let o = LogOptions {
            tail: Some(2),
            timestamps: true,
            ..Default::default()
        };
        let (out, _) = run(d.path(), &o);
        assert_eq!(
            out,
            "2024-01-01T00:00:01.000000000Z two\n2024-01-01T00:00:03.000000000Z \n"
        );
        let o = LogOptions {
            since: parse_since("2024-01-01T00:00:01.2Z").ok(),
            ..Default::default()
        };
        assert_eq!(run(d.path(), &o), ("\n".into(), "oops\n".into()));
    }

    #[test]
    fn following_reads_every_line_once_across_rotations() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let done = Arc::new(AtomicBool::new(false));
        let n = 20_000;
        let writer = {
            let (dir, done) = (dir.clone(), done.clone());
            std::thread::spawn(move || {
                // As the monitor does: append, and every 500 lines shift
                // ctr.log.K -> K+1 .. ctr.log -> ctr.log.1 (nothing dropped).
                let mut rotations = 0;
                let mut f = File::create(dir.join(FILE)).unwrap();
                for i in 0..n {
                    if i % 100 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    writeln!(f, "2024-01-01T00:00:00.000000000Z stdout F {i}").unwrap();
                    if i % 500 == 499 {
                        rotations += 1;
                        for k in (1..rotations).rev() {
                            let from = dir.join(format!("{FILE}.{k}"));
                            fs::rename(from, dir.join(format!("{FILE}.{}", k + 1))).unwrap();
                        }
                        fs::rename(dir.join(FILE), dir.join(format!("{FILE}.1"))).unwrap();
                        f = File::create(dir.join(FILE)).unwrap();
                    }
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let o = LogOptions {
            follow: true,
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let until = || done.load(Ordering::SeqCst);
        print(&dir, &o, &until, &mut out, &mut err).unwrap();
        writer.join().unwrap();
        let want: String = (0..n).map(|i| format!("{i}\n")).collect();
        assert!(
            String::from_utf8(out).unwrap() == want,
            "lines lost or repeated"
        );
    }

    #[test]
    fn a_reader_gone_ends_following_quietly() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join(FILE),
            "2024-01-01T00:00:00.000000000Z stdout F a\n",
        )
        .unwrap();
        let o = LogOptions {
            follow: true,
            ..Default::default()
        };
        // until() never says stop: only the closed reader ends it.
        print(d.path(), &o, &|| false, &mut Closed, &mut Vec::new()).unwrap();
    }

    #[test]
    fn since_takes_durations_times_and_unix_seconds() {
        assert_eq!(
            parse_since("1970-01-02T00:00:00Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(86400)
        );
        assert_eq!(
            parse_since("1970-01-02T01:00:00.5+01:00").unwrap(),
            UNIX_EPOCH + Duration::new(86400, 500_000_000)
        );
        assert_eq!(
            parse_since("60").unwrap(),
            UNIX_EPOCH + Duration::from_secs(60)
        );
        let ago = SystemTime::now()
            .duration_since(parse_since("1h30m").unwrap())
            .unwrap();
        assert!(
            ago >= Duration::from_secs(5390) && ago < Duration::from_secs(5460),
            "{ago:?}"
        );
        for bad in ["", "10x", "m", "2024-13-01T00:00:00Z", "yesterday", "1h30"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::new(951_782_400, 7)),
            "2000-02-29T00:00:00.000000007Z"
        );
    }
}
