//! Line-based chat server: `cargo run --example chat -- --addr 127.0.0.1:9002`.
//!
//! Try it with `nc 127.0.0.1 9002` in two terminals: each line you type
//! goes to everyone. `/nick NAME` renames you, `/quit` leaves.
//!
//! How it works: one task per client. Its lines come through a
//! `BufReader` with a line limit; every line goes into one broadcast
//! channel that all clients receive from; `select!` waits for whichever
//! comes first, the client's next line or the next broadcast. Nobody waits
//! for a slow client: the channel holds the last `--history` lines, and a
//! client that falls further behind (say it stopped reading its socket) is
//! told it lagged and is disconnected, as is one whose write stalls longer
//! than `--write-timeout`. A client that sends more than `--rate` lines a
//! second (bursts of `--burst`) is disconnected for flooding.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corio::io::{BufReader, OwnedWrite};
use corio::net::{OwnedWriteHalf, TcpListener, TcpStream};
use corio::sync::broadcast::error::RecvError;
use corio::sync::local::broadcast;
use corio::time::{sleep, timeout};

#[corio::main]
async fn main() -> io::Result<()> {
    let cfg = Config::from_args();
    let listener = TcpListener::bind(&cfg.addr)?;
    println!("listening on {}", listener.local_addr()?);
    let (tx, _) = broadcast::channel::<Bytes>(cfg.history);
    for id in 1.. {
        match listener.accept().await {
            Ok((stream, _)) => {
                let nick = format!("guest{id}");
                corio::spawn(client(stream, nick, tx.clone(), cfg.clone()));
            }
            // Out of fds, say: wait instead of spinning.
            Err(e) => {
                eprintln!("accept failed: {e}");
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}

/// Serves one client until it leaves or is disconnected.
async fn client(stream: TcpStream, mut nick: String, tx: broadcast::Sender<Bytes>, cfg: Config) {
    let mut rx = tx.subscribe();
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).with_max_line_length(cfg.max_line);
    let mut bucket = Bucket::new(cfg.rate, cfg.burst);
    let hello = format!("* welcome, {nick}: /nick NAME to rename, /quit to leave\n");
    if send(&mut writer, hello.into(), &cfg).await.is_err() {
        return;
    }
    announce(&tx, format!("* {nick} joined"));
    let mut line = String::new();
    let why = loop {
        line.clear();
        corio::select! {
            // Cancel-safe: a line half read when the other branch wins stays
            // in the BufReader for the next turn.
            res = lines.read_line(&mut line) => match res {
                Ok(0) => break "left",
                Ok(_) if !bucket.take() => {
                    let _ = send(&mut writer, "* you are flooding: bye\n".into(), &cfg).await;
                    break "was disconnected for flooding";
                }
                Ok(_) => {
                    let text = line.trim_end();
                    if text == "/quit" {
                        break "left";
                    } else if let Some(new) = text.strip_prefix("/nick ") {
                        let new = new.trim();
                        if !new.is_empty() && !new.contains(char::is_whitespace) {
                            announce(&tx, format!("* {nick} is now {new}"));
                            nick = new.to_string();
                        }
                    } else if !text.is_empty() {
                        announce(&tx, format!("{nick}: {text}"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    let msg = format!("* lines are at most {} bytes of UTF-8: bye\n", cfg.max_line);
                    let _ = send(&mut writer, msg.into(), &cfg).await;
                    break "was disconnected for a bad line";
                }
                Err(_) => break "dropped",
            },
            // Cancel-safe too: a message not yet taken stays in the channel.
            msg = rx.recv() => match msg {
                Ok(msg) => {
                    if send(&mut writer, msg, &cfg).await.is_err() {
                        break "was disconnected (not reading)";
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let _ = send(&mut writer, "* you fell behind: bye\n".into(), &cfg).await;
                    break "was disconnected (too far behind)";
                }
                Err(RecvError::Closed) => break "left",
            },
        }
    };
    announce(&tx, format!("* {nick} {why}"));
}

/// Sends one line to everyone (no one listening is fine).
fn announce(tx: &broadcast::Sender<Bytes>, text: String) {
    let _ = tx.send(Bytes::from(text + "\n"));
}

/// Writes `msg`, failing if the client does not take it in time.
async fn send(w: &mut OwnedWriteHalf, msg: Bytes, cfg: &Config) -> io::Result<()> {
    match timeout(cfg.write_timeout, w.write_all(msg)).await {
        Ok((res, _)) => res,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// A token bucket: `rate` lines a second, up to `burst` at once.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32, burst: u32) -> Bucket {
        Bucket {
            tokens: burst as f64,
            rate: rate as f64,
            burst: burst as f64,
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, Debug)]
struct Config {
    addr: String,
    rate: u32,
    burst: u32,
    history: usize,
    max_line: usize,
    write_timeout: Duration,
}

impl Config {
    fn from_args() -> Config {
        let mut cfg = Config {
            addr: "127.0.0.1:9002".into(),
            rate: 20,
            burst: 40,
            history: 256,
            max_line: 1024,
            write_timeout: Duration::from_secs(5),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (arg, args.next()),
            };
            let Some(v) = value else { usage() };
            let n = || v.parse::<u64>().unwrap_or_else(|_| usage());
            match key.as_str() {
                "--addr" => cfg.addr = v.clone(),
                "--rate" => cfg.rate = n() as u32,
                "--burst" => cfg.burst = n() as u32,
                "--history" => cfg.history = n().max(1) as usize,
                "--max-line" => cfg.max_line = n().max(1) as usize,
                "--write-timeout" => cfg.write_timeout = Duration::from_millis(n()),
                _ => usage(),
            }
        }
        cfg
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: chat [--addr HOST:PORT] [--rate LINES_PER_SEC] [--burst LINES] \
         [--history LINES] [--max-line BYTES] [--write-timeout MS]"
    );
    std::process::exit(2);
}
