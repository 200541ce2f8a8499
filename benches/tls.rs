//! TLS benchmark: echo throughput with 1 MiB messages and full handshakes per second, corio (`corio::tls`) against tokio + tokio-rustls, same rustls configs, same run.
//!
//! Run: `cargo bench --bench tls [-- echo|handshake] [corio|tokio]`. The server and
//! the client each run a single-threaded runtime on a thread of their own, pinned to
//! CPU 0 and CPU 1 (the machine needs two). Each figure is the min and median of `REPS`
//! runs after a warm-up, the contenders taking turns. CPU figures are the server's
//! (and client's) thread CPU time over the timed window, per operation.
//!
//! - `echo`: one connection; the client writes a 1 MiB message, the server reads all of
//!   it and writes it back, the client reads it all; `ECHO_ROUNDS` times. MiB/s counts
//!   the bytes of one direction.
//! - `handshake`: `HANDSHAKES` sequential connections, each a full TLS 1.3 handshake
//!   (client resumption off, ECDSA P-256 certificate, X25519) and a `close_notify`.

use std::net::SocketAddr;
use std::os::unix::thread::JoinHandleExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corio::IoBuf;
use corio::tls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const REPS: usize = 5;
const MSG: usize = 1 << 20;
const ECHO_ROUNDS: usize = 200;
const HANDSHAKES: usize = 1_000;
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// What one run measured.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    server_cpu: Duration,
    client_cpu: Duration,
}

/// The rustls configs both contenders use.
struct Configs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn configs() -> Configs {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    server.send_tls13_tickets = 0;
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    Configs {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

/// Pins the calling thread to `cpu` (ignored if that fails, e.g. one CPU).
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it;
    // sched_setaffinity reads `size_of::<cpu_set_t>()` bytes from it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The CPU-time clock of a thread.
fn thread_clock(t: libc::pthread_t) -> libc::clockid_t {
    let mut id: libc::clockid_t = 0;
    // SAFETY: `t` names a live thread (its JoinHandle is held); `id` is a valid out-pointer.
    let rc = unsafe { libc::pthread_getcpuclockid(t, &mut id) };
    assert_eq!(rc, 0, "pthread_getcpuclockid");
    id
}

fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; a bad clock id only makes the call fail.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The server of one run, on its own pinned thread; stopped on drop.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds a listener, then runs `serve` on a new thread pinned to `SERVER_CPU`.
    fn start(
        serve: impl FnOnce(std::net::TcpListener, Arc<AtomicBool>) + Send + 'static,
    ) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            pin(SERVER_CPU);
            serve(listener, flag);
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn clock(&self) -> libc::clockid_t {
        thread_clock(self.thread.as_ref().unwrap().as_pthread_t())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, which then sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// Runs `client` on a new thread pinned to `CLIENT_CPU`; it returns the wall time of
/// its timed window and the server's CPU clock readings at both ends of it.
fn run_client<F>(server: &Server, client: F) -> Sample
where
    F: FnOnce(SocketAddr, &dyn Fn()) -> Duration + Send + 'static,
{
    let (addr, server_clock) = (server.addr, server.clock());
    let t = std::thread::spawn(move || {
        pin(CLIENT_CPU);
        let own = thread_clock(
            // SAFETY: pthread_self is always safe to call.
            unsafe { libc::pthread_self() },
        );
        let (s0, c0) = (
            std::cell::Cell::new(Duration::ZERO),
            std::cell::Cell::new(Duration::ZERO),
        );
        // The client calls `mark` when its timed window starts; the window ends on return.
        let mark = || {
            s0.set(cpu_time(server_clock));
            c0.set(cpu_time(own));
        };
        let wall = client(addr, &mark);
        Sample {
            wall,
            server_cpu: cpu_time(server_clock) - s0.get(),
            client_cpu: cpu_time(own) - c0.get(),
        }
    });
    t.join().unwrap()
}

// ---------------------------------------------------------------- corio

/// The corio server: each connection in its own task, handshake, then echo whole
/// messages until the client closes.
fn corio_server(config: Arc<ServerConfig>) -> Server {
    Server::start(move |listener, stop| {
        corio::run(async move {
            let listener = corio::net::TcpListener::from_std(listener);
            let acceptor = corio::tls::TlsAcceptor::from(config);
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let acceptor = acceptor.clone();
                corio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::with_capacity(MSG);
                    loop {
                        let (res, b) = tls.read_exact(buf.slice(..MSG)).await;
                        buf = b.into_inner();
                        if res.is_err() {
                            break;
                        }
                        let (res, b) = tls.write_all(buf).await;
                        buf = b;
                        if res.is_err() {
                            return;
                        }
                    }
                    let _ = tls.shutdown().await;
                });
            }
        })
    })
}

fn corio_echo(c: &Configs) -> Sample {
    let server = corio_server(c.server.clone());
    let config = c.client.clone();
    run_client(&server, move |addr, mark| {
        corio::run(async move {
            let connector = corio::tls::TlsConnector::from(config);
            let tcp = corio::net::TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut tls = connector.connect("localhost", tcp).await.unwrap();
            let mut msg = vec![0x5a_u8; MSG];
            let mut back = Vec::with_capacity(MSG);
            let mut t = Instant::now();
            for i in 0..=ECHO_ROUNDS {
                if i == 1 {
                    mark(); // round 0 warms up
                    t = Instant::now();
                }
                let (res, m) = tls.write_all(msg).await;
                res.unwrap();
                msg = m;
                let (res, b) = tls.read_exact(back.slice(..MSG)).await;
                res.unwrap();
                back = b.into_inner();
            }
            let wall = t.elapsed();
            assert_eq!(back, msg);
            tls.shutdown().await.unwrap();
            wall
        })
    })
}

fn corio_handshakes(c: &Configs) -> Sample {
    let server = corio_server(c.server.clone());
    let config = c.client.clone();
    run_client(&server, move |addr, mark| {
        corio::run(async move {
            let connector = corio::tls::TlsConnector::from(config);
            let mut t = Instant::now();
            for i in 0..=HANDSHAKES {
                if i == 1 {
                    mark();
                    t = Instant::now();
                }
                let tcp = corio::net::TcpStream::connect(addr).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let mut tls = connector.connect("localhost", tcp).await.unwrap();
                tls.shutdown().await.unwrap();
            }
            t.elapsed()
        })
    })
}

// ---------------------------------------------------------------- tokio

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The tokio + tokio-rustls server, the same as `corio_server`.
fn tokio_server(config: Arc<ServerConfig>) -> Server {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    Server::start(move |listener, stop| {
        tokio_rt().block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; MSG];
                    loop {
                        if tls.read_exact(&mut buf).await.is_err() {
                            break;
                        }
                        if tls.write_all(&buf).await.is_err() {
                            return;
                        }
                    }
                    let _ = tls.shutdown().await;
                });
            }
        })
    })
}

fn tokio_connector(config: Arc<ClientConfig>) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(config)
}

fn localhost_name() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("localhost").unwrap()
}

fn tokio_echo(c: &Configs) -> Sample {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = tokio_server(c.server.clone());
    let config = c.client.clone();
    run_client(&server, move |addr, mark| {
        tokio_rt().block_on(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut tls = tokio_connector(config)
                .connect(localhost_name(), tcp)
                .await
                .unwrap();
            let msg = vec![0x5a_u8; MSG];
            let mut back = vec![0u8; MSG];
            let mut t = Instant::now();
            for i in 0..=ECHO_ROUNDS {
                if i == 1 {
                    mark();
                    t = Instant::now();
                }
                tls.write_all(&msg).await.unwrap();
                tls.read_exact(&mut back).await.unwrap();
            }
            let wall = t.elapsed();
            assert_eq!(back, msg);
            tls.shutdown().await.unwrap();
            wall
        })
    })
}

fn tokio_handshakes(c: &Configs) -> Sample {
    use tokio::io::AsyncWriteExt;
    let server = tokio_server(c.server.clone());
    let config = c.client.clone();
    run_client(&server, move |addr, mark| {
        tokio_rt().block_on(async move {
            let connector = tokio_connector(config);
            let mut t = Instant::now();
            for i in 0..=HANDSHAKES {
                if i == 1 {
                    mark();
                    t = Instant::now();
                }
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let mut tls = connector.connect(localhost_name(), tcp).await.unwrap();
                tls.shutdown().await.unwrap();
            }
            t.elapsed()
        })
    })
}

// ---------------------------------------------------------------- report

/// Min and median.
fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

/// Runs each selected contender `REPS` times after a warm-up, taking turns; prints
/// the rate (median, best) for `ops` operations per run, and the server's and the
/// client's CPU µs per operation (min, median).
fn compare(
    name: &str,
    unit: &str,
    ops: f64,
    contenders: &mut [(&str, &mut dyn FnMut() -> Sample)],
) {
    let mut runs: Vec<Vec<Sample>> = contenders.iter().map(|_| Vec::new()).collect();
    for round in 0..=REPS {
        for (i, (_, f)) in contenders.iter_mut().enumerate() {
            let s = f();
            if round > 0 {
                runs[i].push(s);
            }
        }
    }
    for ((who, _), samples) in contenders.iter().zip(runs) {
        let rate = stats(samples.iter().map(|s| ops / s.wall.as_secs_f64()).collect());
        let best = samples
            .iter()
            .map(|s| ops / s.wall.as_secs_f64())
            .fold(0.0, f64::max);
        let per_op = |d: Duration| d.as_secs_f64() * 1e6 / ops;
        let srv = stats(samples.iter().map(|s| per_op(s.server_cpu)).collect());
        let cli = stats(samples.iter().map(|s| per_op(s.client_cpu)).collect());
        println!(
            "{name:<10} {who:<6} {:>8.0} {best:>8.0} {unit:<13} server CPU {:>7.1} {:>7.1} µs/op   \
             client CPU {:>7.1} {:>7.1} µs/op",
            rate.1, srv.0, srv.1, cli.0, cli.1,
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let want =
        |w: &str| args.iter().all(|a| a == "corio" || a == "tokio") || args.iter().any(|a| a == w);
    let runtime =
        |w: &str| !args.iter().any(|a| a == "corio" || a == "tokio") || args.iter().any(|a| a == w);
    let c = configs();
    println!(
        "{REPS} runs after a warm-up, contenders taking turns; server on CPU {SERVER_CPU}, \
         client on CPU {CLIENT_CPU}; rates: median, best; CPU: min, median\n"
    );
    if want("echo") {
        let mut list: Vec<(&str, &mut dyn FnMut() -> Sample)> = Vec::new();
        let (mut fc, mut ft) = (|| corio_echo(&c), || tokio_echo(&c));
        if runtime("corio") {
            list.push(("corio", &mut fc));
        }
        if runtime("tokio") {
            list.push(("tokio", &mut ft));
        }
        compare("echo 1MiB", "MiB/s", ECHO_ROUNDS as f64, &mut list);
    }
    if want("handshake") {
        let mut list: Vec<(&str, &mut dyn FnMut() -> Sample)> = Vec::new();
        let (mut fc, mut ft) = (|| corio_handshakes(&c), || tokio_handshakes(&c));
        if runtime("corio") {
            list.push(("corio", &mut fc));
        }
        if runtime("tokio") {
            list.push(("tokio", &mut ft));
        }
        compare("handshake", "handshakes/s", HANDSHAKES as f64, &mut list);
    }
}
