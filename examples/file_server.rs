//! Static files over HTTP/1.1 with `TcpStream::send_file`:
//! `cargo run --example file_server -- --addr 127.0.0.1:8000 --root ./public`.
//!
//! GET and HEAD of files under the root (a directory serves its
//! `index.html`), `Range: bytes=a-b` / `a-` / `-n` (206, or 416 for a range
//! outside the file), 404 for a missing file, 403 for paths that leave the
//! root (`..` segments, or symlinks that resolve outside it), keep-alive
//! connections. The body goes from the page cache to the socket without
//! passing through user space (splice on io_uring, sendfile(2) on the poll
//! driver).

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use corio::fs::File;
use corio::net::{TcpListener, TcpStream};

/// Longest request head accepted.
const MAX_HEAD: usize = 16 << 10;

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:8000".to_string();
    let mut root = PathBuf::from(".");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--root", Some(v)) => root = PathBuf::from(v),
            _ => {
                eprintln!("usage: file_server [--addr HOST:PORT] [--root DIR]");
                std::process::exit(2);
            }
        }
    }
    let root = Rc::new(std::fs::canonicalize(&root)?);
    corio::run(async move {
        let listener = TcpListener::bind(&addr)?;
        println!("listening on http://{}", listener.local_addr()?);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let root = root.clone();
                    corio::spawn(async move {
                        let _ = serve(stream, &root).await;
                    });
                }
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    corio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    })
}

/// One parsed request head.
struct Request {
    head_only: bool,
    path: String,
    range: Option<String>,
    keep_alive: bool,
}

/// Serves requests on one connection until it closes or asks to.
async fn serve(stream: TcpStream, root: &Path) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        // Read until the end of a head (bounded by MAX_HEAD).
        let end = loop {
            if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if pending.len() > MAX_HEAD {
                return respond(&stream, "431 Request Header Fields Too Large", false).await;
            }
            let (res, buf) = stream.read(Vec::with_capacity(4096)).await;
            if res? == 0 {
                return Ok(());
            }
            pending.extend_from_slice(&buf);
        };
        let head: Vec<u8> = pending.drain(..end).collect();
        let Some(req) = parse(&String::from_utf8_lossy(&head)) else {
            return respond(&stream, "400 Bad Request", false).await;
        };
        if !answer(&stream, root, &req).await? || !req.keep_alive {
            return Ok(());
        }
    }
}

fn parse(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return None,
    };
    let mut keep_alive = version == "HTTP/1.1";
    let mut range = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("range") {
            range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close")
                && (keep_alive || value.eq_ignore_ascii_case("keep-alive"));
        }
    }
    let path = target.split(['?', '#']).next()?.to_string();
    Some(Request {
        head_only,
        path,
        range,
        keep_alive,
    })
}

/// Where `path` leads under `root`: the file and its size, or the status.
fn resolve(root: &Path, path: &str) -> Result<(PathBuf, u64), &'static str> {
    let decoded = percent_decode(path).ok_or("400 Bad Request")?;
    let mut full = root.to_path_buf();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err("403 Forbidden"),
            s if s.contains('\0') => return Err("400 Bad Request"),
            s => full.push(s),
        }
    }
    let mut real = std::fs::canonicalize(&full).map_err(|_| "404 Not Found")?;
    // A symlink may lead anywhere: only what resolves inside the root is served.
    if !real.starts_with(root) {
        return Err("403 Forbidden");
    }
    if real.is_dir() {
        real.push("index.html");
    }
    match std::fs::metadata(&real) {
        Ok(m) if m.is_file() => Ok((real, m.len())),
        Ok(_) => Err("403 Forbidden"),
        Err(_) => Err("404 Not Found"),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The byte range `spec` asks of a file of `size` bytes: `Ok(None)` for the
/// whole file (no range, or one this server ignores), `Err` when it cannot
/// be satisfied (416).
fn byte_range(spec: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = spec else { return Ok(None) };
    let Some(r) = spec.strip_prefix("bytes=") else {
        return Ok(None);
    };
    if r.contains(',') {
        return Ok(None); // several ranges: the whole file instead
    }
    let (a, b) = r.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // The last n bytes.
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if start >= size || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Answers one request; false when the connection must close.
async fn answer(stream: &TcpStream, root: &Path, req: &Request) -> io::Result<bool> {
    let (root2, path) = (root.to_path_buf(), req.path.clone());
    let resolved = corio::spawn_blocking(move || resolve(&root2, &path))
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    let (file_path, size) = match resolved {
        Ok(found) => found,
        Err(status) => {
            respond(stream, status, req.keep_alive).await?;
            return Ok(true);
        }
    };
    let (status, start, len, extra) = match byte_range(req.range.as_deref(), size) {
        Ok(None) => ("200 OK", 0, size, String::new()),
        Ok(Some((a, b))) => (
            "206 Partial Content",
            a,
            b - a + 1,
            format!("Content-Range: bytes {a}-{b}/{size}\r\n"),
        ),
        Err(()) => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            stream.write_all(head.into_bytes()).await.0?;
            return Ok(true);
        }
    };
    let file = File::open(&file_path).await?;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\n{extra}\
         Content-Type: {}\r\n\r\n",
        content_type(&file_path)
    );
    stream.write_all(head.into_bytes()).await.0?;
    if !req.head_only {
        let sent = stream.send_file(&file, start, len).await?;
        if sent < len {
            // The file shrank meanwhile: the promised length cannot be kept.
            return Ok(false);
        }
    }
    Ok(true)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// A body-less answer with `status`.
async fn respond(stream: &TcpStream, status: &str, keep_alive: bool) -> io::Result<()> {
    let conn = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let head = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n{conn}\r\n");
    stream.write_all(head.into_bytes()).await.0
}
