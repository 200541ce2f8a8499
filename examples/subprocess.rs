//! Runs a command and pipes its stdout through a line filter, like
//! `CMD | grep -n PATTERN`: `cargo run --example subprocess -- --grep rs -- ls -l`.
//!
//! The child's stdout is a corio pipe read with owned buffers; the lines
//! that contain the pattern are printed with their numbers, then the
//! child's exit status goes to stderr and becomes this program's exit code.
//! With `--timeout SECS` a child that runs too long is killed. Without a
//! command it runs `ls -l /`.

use std::io::{self, Write};
use std::time::Duration;

use corio::process::{Command, Stdio};

fn main() -> io::Result<()> {
    let args = Args::parse();
    let code = corio::run(run(args))?;
    std::process::exit(code);
}

async fn run(args: Args) -> io::Result<i32> {
    let mut child = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut filter = LineFilter::new(args.pattern.into_bytes());
    let copy = async {
        let mut buf = vec![0u8; 8192];
        loop {
            let (res, b) = stdout.read(buf).await;
            buf = b;
            match res? {
                0 => break,
                n => filter.feed(&buf[..n])?,
            }
        }
        filter.finish()?;
        Ok::<_, io::Error>(())
    };
    match args.timeout {
        None => copy.await?,
        Some(limit) => {
            if corio::time::timeout(limit, copy).await.is_err() {
                eprintln!("subprocess: still running after {limit:?}, killing it");
                child.kill().await?;
            }
        }
    }
    let status = child.wait().await?;
    eprintln!(
        "subprocess: {}: {status}; {} of {} lines matched",
        args.command[0], filter.matched, filter.lines
    );
    Ok(status.code().unwrap_or(1))
}

/// Splits bytes into lines and prints those containing a pattern.
struct LineFilter {
    pattern: Vec<u8>,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    lines: u64,
    matched: u64,
    out: io::BufWriter<io::Stdout>,
}

impl LineFilter {
    fn new(pattern: Vec<u8>) -> LineFilter {
        LineFilter {
            pattern,
            partial: Vec::new(),
            lines: 0,
            matched: 0,
            out: io::BufWriter::new(io::stdout()),
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while let Some(end) = data.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&data[..end]);
            data = &data[end + 1..];
            let line = std::mem::take(&mut self.partial);
            self.line(&line)?;
        }
        self.partial.extend_from_slice(data);
        Ok(())
    }

    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        self.lines += 1;
        let hit =
            self.pattern.is_empty() || line.windows(self.pattern.len()).any(|w| w == self.pattern);
        if hit {
            self.matched += 1;
            write!(self.out, "{}: ", self.lines)?;
            self.out.write_all(line)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The last line, if it had no newline.
    fn finish(&mut self) -> io::Result<()> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line)?;
        }
        self.out.flush()
    }
}

struct Args {
    pattern: String,
    timeout: Option<Duration>,
    command: Vec<String>,
}

impl Args {
    fn parse() -> Args {
        let usage = || -> ! {
            eprintln!("usage: subprocess [--grep PATTERN] [--timeout SECS] [--] [CMD [ARGS...]]");
            std::process::exit(2);
        };
        let mut out = Args {
            pattern: String::new(),
            timeout: None,
            command: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--grep" => out.pattern = args.next().unwrap_or_else(|| usage()),
                "--timeout" => match args.next().and_then(|s| s.parse::<f64>().ok()) {
                    Some(secs) if secs > 0.0 => out.timeout = Some(Duration::from_secs_f64(secs)),
                    _ => usage(),
                },
                "--" => {
                    out.command.extend(args.by_ref());
                }
                "-h" | "--help" => usage(),
                _ if arg.starts_with("--") && out.command.is_empty() => usage(),
                _ => {
                    out.command.push(arg);
                    out.command.extend(args.by_ref());
                }
            }
        }
        if out.command.is_empty() {
            out.command = vec!["ls".into(), "-l".into(), "/".into()];
        }
        out
    }
}
