//! HTTP/1.1 on a stream, as much as the status page needs: one request
//! per connection (`Connection: close`), its head parsed by httparse, a
//! small body (the buttons send none), every limit fixed up front so a
//! client can never make the server hold more than a few KiB for it.
//! Every response carries the page's security headers.

use std::io::{self, Read, Write};

/// The most a request's head (request line and headers) may take.
const MAX_HEAD: usize = 16 << 10;
/// The most headers a request may have.
const MAX_HEADERS: usize = 64;
/// The most a request's body may take (a login form's token).
const MAX_BODY: usize = 4 << 10;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The client closed the connection before a whole request.
    #[error("connection closed")]
    Closed,
    #[error("request head over {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("request body over {MAX_BODY} bytes")]
    BodyTooLarge,
    #[error("malformed request: {0}")]
    Bad(String),
    #[error("reading the request: {0}")]
    Io(#[from] io::Error),
}

impl HttpError {
    /// The status to answer with, if the client can still be answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::HeadTooLarge => Some(431),
            HttpError::BodyTooLarge => Some(413),
            HttpError::Bad(_) => Some(400),
            HttpError::Closed | HttpError::Io(_) => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoding left to the router (app names need none).
    pub path: String,
    /// What follows `?`, raw.
    pub query: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's raw value (`a=1&b=2`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// Reads one request: its head, then the body its Content-Length gives.
pub fn read_request(r: &mut impl Read) -> Result<Request, HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Err(HttpError::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some((req, head_len)) = parse_head(&buf)? {
            let mut req = req;
            let len = content_length(&req)?;
            if len > MAX_BODY {
                return Err(HttpError::BodyTooLarge);
            }
            let mut body = buf.split_off(head_len);
            while body.len() < len {
                let n = match r.read(&mut chunk) {
                    Ok(0) => return Err(HttpError::Closed),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                };
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
            req.body = body;
            return Ok(req);
        }
        if buf.len() > MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
    }
}

/// The request's head if `buf` holds all of it, with its length.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut p = httparse::Request::new(&mut headers);
    let len = match p.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(e) => return Err(HttpError::Bad(e.to_string())),
    };
    if len > MAX_HEAD {
        return Err(HttpError::HeadTooLarge);
    }
    let target = p.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for h in p.headers.iter() {
        let v = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::Bad(format!("header {} is not UTF-8", h.name)))?;
        headers.push((h.name.to_ascii_lowercase(), v.trim().to_string()));
    }
    let req = Request {
        method: p.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
    };
    if req.header("transfer-encoding").is_some() {
        // No chunked bodies: nothing here needs them, and a body whose
        // length is not known up front is one more way to be held.
        return Err(HttpError::Bad("Transfer-Encoding is not accepted".into()));
    }
    Ok(Some((req, len)))
}

fn content_length(req: &Request) -> Result<usize, HttpError> {
    let mut lens = req
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>());
    match (lens.next(), lens.next()) {
        (None, _) => Ok(0),
        (Some(Ok(n)), None) => Ok(n),
        (Some(Ok(_)), Some(_)) => Err(HttpError::Bad("more than one Content-Length".into())),
        (Some(Err(_)), _) => Err(HttpError::Bad("Content-Length is not a number".into())),
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra headers (Location, WWW-Authenticate, Set-Cookie, ...).
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// A one-line text answer (errors, "ok").
    pub fn text(status: u16, msg: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{msg}\n"))
    }

    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response::new(status, "application/json", v.to_string())
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Writes the response with the headers every answer carries: nothing
/// loaded from elsewhere (CSP), never framed, no type sniffing, no caching
/// (state and logs change, and may be private).
pub fn write_response(w: &mut impl Write, resp: &Response, head_only: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Content-Security-Policy: default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n\
         X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    for (n, v) in &resp.headers {
        // Values are ours, never the client's; a line break would still
        // split the head, so none gets through.
        let v: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    if !head_only {
        w.write_all(&resp.body)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_request_is_parsed() {
        let raw = b"POST /api/apps/web/restart?x=1&y=2 HTTP/1.1\r\nHost: localhost:80\r\nContent-Length: 3\r\n\r\nabc";
        let r = read_request(&mut &raw[..]).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/api/apps/web/restart");
        assert_eq!(r.param("y"), Some("2"));
        assert_eq!(r.header("host"), Some("localhost:80"));
        assert_eq!(r.body, b"abc");
    }

    #[test]
    fn a_partial_head_waits_and_a_closed_one_is_closed() {
        assert!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            read_request(&mut &b"GET / HTTP/1.1\r\n"[..]),
            Err(HttpError::Closed)
        ));
    }

    #[test]
    fn limits_hold() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert!(matches!(
            read_request(&mut &big[..]),
            Err(HttpError::HeadTooLarge)
        ));
        let body = b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n";
        assert!(matches!(
            read_request(&mut &body[..]),
            Err(HttpError::BodyTooLarge)
        ));
        let te = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(read_request(&mut &te[..]).unwrap_err().status(), Some(400));
        let two = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(read_request(&mut &two[..]).unwrap_err().status(), Some(400));
        assert_eq!(
            read_request(&mut &b"\x00\x01 nonsense\r\n\r\n"[..])
                .unwrap_err()
                .status(),
            Some(400)
        );
    }

    #[test]
    fn responses_carry_the_security_headers_and_no_injected_lines() {
        let mut out = Vec::new();
        let r = Response::text(200, "hi").with("Location", "/x\r\nSet-Cookie: evil=1");
        write_response(&mut out, &r, false).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Security-Policy: default-src 'self'"));
        assert!(s.contains("X-Frame-Options: DENY\r\n"));
        assert!(s.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(!s.contains("\r\nSet-Cookie"));
        assert!(s.ends_with("\r\n\r\nhi\n"));
    }
}
