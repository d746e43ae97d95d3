//! The last lines of an app's log for the page: read from the END of the
//! files the monitor writes (ctr.log, then ctr.log.1 when that is not
//! enough), a bounded number of bytes per request whatever the log's size,
//! so a page following ten apps costs the same with 1 KiB or 50 MiB of
//! logs. Lines are CRI lines (`<time> <stream> <F|P> <text>`), pieces
//! joined as `rrun app logs` joins them. Reads only; never follows a
//! symlink.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most read from the end of one file per request.
const WINDOW: u64 = 256 << 10;
/// The most of one line shown (the rest is cut, marked).
const MAX_LINE: usize = 4 << 10;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogLine {
    /// RFC 3339 with nanoseconds, UTC: also the follower's cursor.
    pub time: String,
    pub stream: &'static str,
    pub text: String,
}

/// The last `n` lines written after `after` (a line's time; exclusive).
pub fn tail(dir: &Path, n: usize, after: Option<&str>) -> Vec<LogLine> {
    let mut lines = Vec::new();
    // Newest file first; an older one only while the newer one was read
    // whole and gave too few lines.
    for file in ["ctr.log", "ctr.log.1"] {
        let Some((raw, whole)) = read_end(&dir.join(file)) else {
            continue;
        };
        let mut got = parse(&raw, after);
        got.append(&mut lines);
        lines = got;
        if !whole || lines.len() >= n {
            break;
        }
    }
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

/// The last WINDOW bytes of the file (from a line's start), and whether
/// that is the whole file.
fn read_end(path: &Path) -> Option<(Vec<u8>, bool)> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(WINDOW);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.take(WINDOW).read_to_end(&mut buf).ok()?;
    if start > 0 {
        // The window starts inside a line: it begins after the first
        // newline.
        let nl = buf.iter().position(|&b| b == b'\n')?;
        buf.drain(..=nl);
    }
    Some((buf, start == 0))
}

fn parse(raw: &[u8], after: Option<&str>) -> Vec<LogLine> {
    let mut out = Vec::new();
    // One line being joined from pieces per stream.
    let mut partial: [Option<LogLine>; 2] = [None, None];
    // Only whole lines (a newline after them): the last one may be being
    // written.
    let end = raw.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    for l in raw[..end].split(|&b| b == b'\n') {
        let mut it = l.splitn(4, |&b| b == b' ');
        let (Some(ts), Some(stream), Some(tag)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let text = String::from_utf8_lossy(it.next().unwrap_or_default());
        let (i, stream) = match stream {
            b"stdout" => (0, "stdout"),
            b"stderr" => (1, "stderr"),
            _ => continue,
        };
        let line = match partial[i].take() {
            Some(mut p) => {
                if p.text.len() < MAX_LINE {
                    p.text.push_str(&text);
                }
                // A joined line's time is its last piece's: lines come
                // out in time order, and a follower's cursor skips none.
                p.time = String::from_utf8_lossy(ts).into_owned();
                p
            }
            None => LogLine {
                time: String::from_utf8_lossy(ts).into_owned(),
                stream,
                text: text.into_owned(),
            },
        };
        if tag == b"P" {
            partial[i] = Some(line);
            continue;
        }
        out.push(line);
    }
    out.retain(|l| after.is_none_or(|a| l.time.as_str() > a));
    for l in &mut out {
        if l.text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !l.text.is_char_boundary(cut) {
                cut -= 1;
            }
            l.text.truncate(cut);
            l.text.push_str(" [...]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: u32, stream: &str, tag: &str, text: &str) -> String {
        format!("2026-01-01T00:00:{ts:02}.000000000Z {stream} {tag} {text}\n")
    }

    #[test]
    fn last_lines_pieces_joined_and_after_a_cursor() {
        let d = tempfile::tempdir().unwrap();
        let mut old = String::new();
        for i in 0..3 {
            old.push_str(&line(i, "stdout", "F", &format!("old {i}")));
        }
        std::fs::write(d.path().join("ctr.log.1"), old).unwrap();
        let cur = line(10, "stdout", "P", "hel")
            + &line(11, "stderr", "F", "err")
            + &line(12, "stdout", "F", "lo")
            + "2026-01-01T00:00:13.000000000Z stdout F unfinish";
        std::fs::write(d.path().join("ctr.log"), cur).unwrap();
        let all = tail(d.path(), 10, None);
        let texts: Vec<&str> = all.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["old 0", "old 1", "old 2", "err", "hello"]);
        assert_eq!(all[3].stream, "stderr");
        assert_eq!(tail(d.path(), 2, None).len(), 2);
        let after = tail(d.path(), 10, Some(&all[3].time));
        assert_eq!(
            after.len(),
            1,
            "hello's time is its last piece's: {after:?}"
        );
        let after = tail(d.path(), 10, Some(&all[2].time));
        assert_eq!(after.len(), 2);
    }

    #[test]
    fn a_big_log_is_read_from_its_end_only() {
        let d = tempfile::tempdir().unwrap();
        let mut s = String::new();
        let mut i = 0u32;
        while (s.len() as u64) < 2 * WINDOW {
            s.push_str(&line(i % 60, "stdout", "F", &format!("line {i}")));
            i += 1;
        }
        std::fs::write(d.path().join("ctr.log"), &s).unwrap();
        let t = tail(d.path(), 5, None);
        assert_eq!(t.len(), 5);
        assert_eq!(t[4].text, format!("line {}", i - 1));
        assert!(tail(d.path(), 1_000_000, None).len() < i as usize);
        assert!(tail(&d.path().join("nothing"), 5, None).is_empty());
    }

    #[test]
    fn long_lines_are_cut() {
        let d = tempfile::tempdir().unwrap();
        let long = "é".repeat(MAX_LINE);
        std::fs::write(d.path().join("ctr.log"), line(1, "stdout", "F", &long)).unwrap();
        let t = tail(d.path(), 1, None);
        assert!(t[0].text.len() <= MAX_LINE + 6 && t[0].text.ends_with("[...]"));
    }
}
