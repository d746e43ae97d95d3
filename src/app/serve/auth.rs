//! Who may do what on the status page: the token (made, kept, compared),
//! the Host check that keeps a DNS-rebinding page away from a server on
//! loopback, and the CSRF check of state-changing requests. Pure but for
//! the token file and the random bytes.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::http::Request;

/// The cookie a login form sets (non-loopback servers: reading needs the
/// token too, and a browser cannot send a header on a plain navigation).
pub const COOKIE: &str = "rrun_serve_token";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {0} can be read by group or others (chmod 600 it)")]
    Mode(PathBuf),
    #[error("token file {0} belongs to another user (uid {1}): whoever owns it knows the token")]
    Owner(PathBuf, u32),
    #[error("token file {0} holds no token (a line of at least 16 printable characters)")]
    Empty(PathBuf),
    #[error("reading random bytes for the token: {0}")]
    Random(std::io::Error),
}

/// Where the token came from: what the server may print about it.
#[derive(Debug, PartialEq)]
pub enum TokenSource {
    /// Made now and not written anywhere: printed once.
    Generated,
    /// Read from this file.
    File(PathBuf),
    /// Made now and written to this (new, 0600) file.
    Created(PathBuf),
}

/// A new random token: 32 bytes from the kernel, hex.
pub fn generate() -> Result<String, AuthError> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(AuthError::Random)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The token: read from `file` when it exists (it must be private), made
/// and written to it (0600, created exclusively) when it does not, made
/// and kept in memory without one.
pub fn load_or_create(file: Option<&Path>) -> Result<(String, TokenSource), AuthError> {
    let Some(path) = file else {
        return Ok((generate()?, TokenSource::Generated));
    };
    let io = |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    };
    match fs::File::open(path) {
        Ok(mut f) => {
            let meta = f.metadata().map_err(io)?;
            // A file another user made (in /tmp, say) holds a token they
            // chose: private to them is not private to us.
            let uid = std::os::unix::fs::MetadataExt::uid(&meta);
            if uid != nix::unistd::geteuid().as_raw() {
                return Err(AuthError::Owner(path.to_path_buf(), uid));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(AuthError::Mode(path.to_path_buf()));
            }
            let mut s = String::new();
            Read::by_ref(&mut f)
                .take(4096)
                .read_to_string(&mut s)
                .map_err(io)?;
            let t = s.trim();
            if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(AuthError::Empty(path.to_path_buf()));
            }
            Ok((t.to_string(), TokenSource::File(path.to_path_buf())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let t = generate()?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            // create_new never follows a symlink at the last component; the
            // umask could only narrow 0600.
            f.write_all(format!("{t}\n").as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok((t, TokenSource::Created(path.to_path_buf())))
        }
        Err(e) => Err(io(e)),
    }
}

/// Equal, in a time that depends on the lengths only (the token's length
/// is no secret; its bytes are).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the compiler from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// The token a request carries in `Authorization: Bearer ...`.
pub fn bearer(req: &Request) -> Option<&str> {
    let v = req.header("authorization")?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

/// The token a request carries in the login cookie.
pub fn cookie(req: &Request) -> Option<&str> {
    req.headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// Whether the Host header names loopback (localhost, 127.0.0.1, [::1],
/// any port): a server on loopback answers nothing else, so a page on
/// another site whose name was rebound to 127.0.0.1 gets nothing.
pub fn loopback_host(req: &Request) -> bool {
    let Some(h) = req.header("host") else {
        return false;
    };
    let h = h.to_ascii_lowercase();
    let name = if let Some(rest) = h.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip.to_string(),
            _ => return false,
        }
    } else {
        match h.split_once(':') {
            Some((n, _)) => n.to_string(),
            None => h.clone(),
        }
    };
    if let Some((_, port)) = h.rsplit_once(':')
        && !h.ends_with(']')
        && !port.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1")
}

/// The CSRF check of a state-changing request: a browser says where the
/// request comes from (Origin, Sec-Fetch-Site) and it must be this page
/// itself. (A request without either comes from no browser: curl, a
/// script; the token is what guards it.)
pub fn same_origin(req: &Request) -> bool {
    if let Some(site) = req.header("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    match req.header("origin") {
        None => true,
        Some(o) => match req.header("host") {
            Some(host) => {
                o.eq_ignore_ascii_case(&format!("http://{host}"))
                    || o.eq_ignore_ascii_case(&format!("https://{host}"))
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: "/".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn compare() {
        assert!(constant_time_eq(b"abcd", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abce"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn bearer_and_cookie() {
        assert_eq!(
            bearer(&req(&[("authorization", "Bearer xyz")])),
            Some("xyz")
        );
        assert_eq!(
            bearer(&req(&[("authorization", "bearer  xyz ")])),
            Some("xyz")
        );
        assert_eq!(bearer(&req(&[("authorization", "Basic xyz")])), None);
        assert_eq!(bearer(&req(&[])), None);
        assert_eq!(
            cookie(&req(&[("cookie", "a=1; rrun_serve_token=t0k; b=2")])),
            Some("t0k")
        );
        assert_eq!(cookie(&req(&[("cookie", "rrun_serve_tokenx=1")])), None);
    }

    #[test]
    fn hosts() {
        for ok in [
            "localhost",
            "localhost:9780",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
            "LOCALHOST:5",
        ] {
            assert!(loopback_host(&req(&[("host", ok)])), "{ok}");
        }
        for bad in [
            "evil.example:9780",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "[::1]x",
            "localhost:80x",
            "",
            "10.0.0.1",
        ] {
            assert!(!loopback_host(&req(&[("host", bad)])), "{bad}");
        }
        assert!(!loopback_host(&req(&[])));
    }

    #[test]
    fn csrf() {
        assert!(same_origin(&req(&[("host", "127.0.0.1:5")])));
        assert!(same_origin(&req(&[
            ("host", "127.0.0.1:5"),
            ("origin", "http://127.0.0.1:5"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&req(&[
            ("host", "127.0.0.1:5"),
            ("origin", "http://evil.example"),
        ])));
        assert!(!same_origin(&req(&[
            ("host", "127.0.0.1:5"),
            ("sec-fetch-site", "cross-site"),
        ])));
        assert!(!same_origin(&req(&[("origin", "http://127.0.0.1:5")])));
        assert!(!same_origin(&req(&[
            ("host", "127.0.0.1:5"),
            ("origin", "null"),
        ])));
    }

    #[test]
    fn token_file_is_made_private_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("tok");
        let (t, src) = load_or_create(Some(&p)).unwrap();
        assert_eq!(src, TokenSource::Created(p.clone()));
        assert_eq!(t.len(), 64);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (t2, src2) = load_or_create(Some(&p)).unwrap();
        assert_eq!((t2, src2), (t.clone(), TokenSource::File(p.clone())));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load_or_create(Some(&p)), Err(AuthError::Mode(_))));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&p, "short\n").unwrap();
        assert!(matches!(load_or_create(Some(&p)), Err(AuthError::Empty(_))));
        assert_ne!(generate().unwrap(), generate().unwrap());
    }
}
