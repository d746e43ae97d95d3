//! list [--format table|json] [--quiet]

use anyhow::{Result, bail};

use crate::cli::ListArgs;
use crate::state::Store;

/// Go's tabwriter as runc configures it (minwidth 12, padding 3): every
/// column but the last is padded to its widest cell. (`rrun app`'s
/// listings use it too.)
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{:<w$}", cell, w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

/// The user owning the container's state dir, by name as runc's list shows.
fn owner_name(store: &Store, id: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(store.root.join(id)) else {
        return String::new();
    };
    let uid = meta.uid();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

pub fn list(store: &Store, a: &ListArgs) -> Result<()> {
    let mut states = Vec::new();
    for id in store.list()? {
        // A container half-way through create or delete is skipped, not an error.
        if let Ok(s) = store.peek(&id) {
            states.push(s);
        }
    }
    if a.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match a.format.as_str() {
        "table" => {
            // runc's columns; containers with the built-in init add
            // RESTARTS and HEALTH (only then, so runc-format parsers of
            // plain containers see exactly runc's table).
            let with_init = states.iter().any(|s| s.has_init());
            let mut header: Vec<String> = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec();
            if with_init {
                header.insert(5, "RESTARTS".into());
                header.insert(6, "HEALTH".into());
            }
            let mut rows = vec![header];
            for s in &states {
                let status = s.status();
                let o = s.oci_state(status);
                let mut row = vec![
                    s.id.clone(),
                    o.pid.to_string(),
                    status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    owner_name(store, &s.id),
                ];
                if with_init {
                    let init = s.full_state().init.unwrap_or_default();
                    let get = |k: &str| match &init[k] {
                        serde_json::Value::Null => "-".to_string(),
                        serde_json::Value::String(v) => v.clone(),
                        v => v.to_string(),
                    };
                    let (r, h) = if s.has_init() {
                        (get("restarts"), get("health"))
                    } else {
                        ("-".into(), "-".into())
                    };
                    row.insert(5, r);
                    row.insert(6, h);
                }
                rows.push(row);
            }
            print!("{}", table(&rows));
            if with_init {
                // The init runs in the container: its numbers are the
                // container's word (`reportedBy` in the JSON formats).
                eprintln!("RESTARTS and HEALTH are reported by the container, not checked by rrun");
            }
        }
        "json" => {
            let v: Vec<_> = states.iter().map(|s| s.full_state()).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        other => bail!("invalid --format {other:?}: use table or json"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_pads_like_tabwriter() {
        let rows = vec![
            vec!["ID".to_string(), "PID".into(), "OWNER".into()],
            vec!["a-very-long-id".to_string(), "1".into(), "root".into()],
        ];
        let t = super::table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("{:<17}{:<12}OWNER", "ID", "PID"));
        assert_eq!(lines[1], format!("{:<17}{:<12}root", "a-very-long-id", "1"));
    }
}
