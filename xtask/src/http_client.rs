//! A minimal HTTP/1.1 client over std, for the conformance runner and the
//! benchmarks: Content-Length, chunked and close-delimited bodies.
//!
//! Not ureq 3 (the tests crate's): the conformance runner must send a test's
//! headers exactly, in its order, with `accept: */*` after them when absent.
//! ureq (ureq-proto 0.7) keeps a request's headers in an `http::HeaderMap`,
//! which writes them in its own order (a repeated name's values together)
//! and lowercases their names, and it writes the headers it adds itself
//! (`host` from the URL, `accept`, `user-agent: ureq/…` unless turned off,
//! `content-length`) before the test's. It would also, unless configured
//! otherwise, turn 4xx/5xx into errors, follow redirects, and refuse a body
//! on GET; and it drops the reason phrase. Responses' headers it would show
//! in full.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub struct HttpResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.status, self.reason);
        for (k, v) in &self.headers {
            let _ = write!(s, "; {k}: {v}");
        }
        let _ = write!(
            s,
            "; body ({} bytes): {:?}",
            self.body.len(),
            String::from_utf8_lossy(&self.body)
        );
        s
    }
}

pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    // Connect, retrying briefly like the suite's client does.
    let mut attempt = 0;
    let stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => break s,
            Err(e) if attempt >= 5 => return Err(format!("cannot connect to {addr}: {e}")),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|_| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| format!("socket setup: {e}"))?;
    let _ = stream.set_nodelay(true);

    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        let _ = write!(head, "Host: {addr}\r\n");
    }
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    if !has("accept") {
        head.push_str("accept: */*\r\n");
    }
    if let Some(b) = body
        && !has("content-length")
    {
        let _ = write!(head, "content-length: {}\r\n", b.len());
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body.unwrap_or_default());
    (&stream)
        .write_all(&raw)
        .map_err(|e| format!("writing the request: {e}"))?;

    let mut reader = BufReader::new(&stream);
    read_response(&mut reader, method.eq_ignore_ascii_case("HEAD"))
}

fn io_err(what: &str, e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!(
                "timed out after {} s while {what}",
                REQUEST_TIMEOUT.as_secs()
            )
        }
        _ => format!("{what}: {e}"),
    }
}

pub fn read_line(r: &mut impl BufRead, what: &str) -> Result<String, String> {
    let mut buf = Vec::new();
    let n = r
        .take(64 * 1024)
        .read_until(b'\n', &mut buf)
        .map_err(|e| io_err(what, e))?;
    if n == 0 {
        return Err(format!("connection closed while {what}"));
    }
    if buf.last() != Some(&b'\n') {
        return Err(format!("line too long or truncated while {what}"));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A status line and header block: (status, reason, headers).
type Head = (u16, String, Vec<(String, String)>);

/// Reads a status line and header block.
fn read_head(r: &mut impl BufRead) -> Result<Head, String> {
    let status_line = read_line(r, "reading the status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(format!("malformed status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("malformed status line {status_line:?}"))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, "reading the response headers")?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok((status, reason, headers))
}

pub fn read_response(r: &mut impl BufRead, head_request: bool) -> Result<HttpResponse, String> {
    // Skip interim 1xx responses (100 Continue, 103 Early Hints).
    let (status, reason, headers) = loop {
        let head = read_head(r)?;
        if !(100..200).contains(&head.0) || head.0 == 101 {
            break head;
        }
    };
    let mut response = HttpResponse {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .and_then(|te| te.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
    if chunked {
        response.body = read_chunked(r)?;
    } else if let Some(cl) = response.header("content-length") {
        let len: u64 = cl
            .trim()
            .parse()
            .map_err(|_| format!("invalid content-length {cl:?}"))?;
        let mut body = Vec::new();
        r.take(len)
            .read_to_end(&mut body)
            .map_err(|e| io_err("reading the body", e))?;
        if (body.len() as u64) < len {
            return Err(format!(
                "connection closed after {} of {len} body bytes (content-length)",
                body.len()
            ));
        }
        response.body = body;
    } else {
        r.read_to_end(&mut response.body)
            .map_err(|e| io_err("reading the body until the connection closes", e))?;
    }
    Ok(response)
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r, "reading a chunk size")?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("invalid chunk size line {line:?}"))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !read_line(r, "reading chunked trailers")?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|e| io_err("reading a chunk", e))?;
        let end = read_line(r, "reading the end of a chunk")?;
        if !end.is_empty() {
            return Err(format!("chunk of {size} bytes not followed by CRLF"));
        }
    }
}

