//! Driver selection: `DriverKind`, `CORIO_DRIVER`, and the fallback to the
//! poll driver where io_uring is refused (seccomp EPERM / ENOSYS children).

use std::process::Command;

use corio::net::{TcpListener, TcpStream};
use corio::{Builder, DriverKind, Runtime};

/// Runs this test binary again with only `test` selected and `env` set.
fn run_child(test: &str, env: &[(&str, &str)]) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    cmd.env_remove("CORIO_DRIVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the child did not run exactly one test:\n{stdout}"
    );
    if !out.status.success() {
        eprintln!("child stdout:\n{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("child stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    out
}

fn is_child() -> Option<String> {
    std::env::var("CORIO_TEST_CHILD").ok()
}

/// One TCP echo round trip on `rt`.
fn echo_round_trip(rt: &Runtime) {
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (res, buf) = s.read(vec![0u8; 64]).await;
            let n = res.unwrap();
            s.write_all(buf[..n].to_vec()).await.0.unwrap();
        });
        let c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"ping".as_slice()).await.0.unwrap();
        let (res, buf) = c.read_exact(vec![0u8; 4]).await;
        res.unwrap();
        assert_eq!(&buf, b"ping");
        server.await.unwrap();
    });
}

#[test]
fn explicit_poll_driver_runs_io() {
    let rt = Builder::new().driver(DriverKind::Poll).build().unwrap();
    assert_eq!(rt.driver_kind(), DriverKind::Poll);
    assert!(rt.fallback_reason().is_none());
    echo_round_trip(&rt);
}

#[test]
fn auto_picks_a_concrete_driver() {
    if std::env::var_os("CORIO_DRIVER").is_some() {
        eprintln!("skipped: CORIO_DRIVER is set, so Auto is not what runs");
        return;
    }
    let rt = Runtime::new().unwrap();
    assert_ne!(rt.driver_kind(), DriverKind::Auto);
    if cfg!(all(target_os = "linux", not(corio_no_uring))) && rt.fallback_reason().is_none() {
        assert_eq!(rt.driver_kind(), DriverKind::Uring);
    }
    echo_round_trip(&rt);
}

#[test]
fn env_var_overrides_builder() {
    if let Some(mode) = is_child() {
        let rt = Builder::new().driver(DriverKind::Auto).build();
        match mode.as_str() {
            "env-poll" => assert_eq!(rt.unwrap().driver_kind(), DriverKind::Poll),
            "env-bad" => {
                let err = rt.unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
                assert!(err.to_string().contains("CORIO_DRIVER"), "{err}");
            }
            _ => {}
        }
        return;
    }
    let out = run_child(
        "env_var_overrides_builder",
        &[("CORIO_TEST_CHILD", "env-poll"), ("CORIO_DRIVER", "poll")],
    );
    assert!(out.status.success());
    let out = run_child(
        "env_var_overrides_builder",
        &[("CORIO_TEST_CHILD", "env-bad"), ("CORIO_DRIVER", "bogus")],
    );
    assert!(out.status.success());
}

/// Installs a seccomp filter making io_uring_setup(2) fail with `errno`.
#[cfg(corio_uring)]
fn deny_io_uring_setup(errno: u32) {
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        // Other architectures' syscall numbers differ: allow them.
        ins(LD_W_ABS, 0, 0, 4),
        ins(JEQ_K, 0, 3, ARCH),
        ins(LD_W_ABS, 0, 0, 0),
        ins(JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
        ins(RET_K, 0, 0, SECCOMP_RET_ERRNO | errno),
        ins(RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: plain prctl calls; `prog` and `filter` outlive them, and the
    // kernel copies the program.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let r = libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        );
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

#[cfg(corio_uring)]
fn seccomp_child(errno: i32, expect: &str) {
    deny_io_uring_setup(errno as u32);
    // Asking for io_uring is an error, not a panic.
    let err = Builder::new()
        .driver(DriverKind::Uring)
        .build()
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(errno), "{err}");
    let rt = Builder::new().driver(DriverKind::Auto).build().unwrap();
    assert_eq!(rt.driver_kind(), DriverKind::Poll);
    let why = rt.fallback_reason().expect("a fallback reason");
    assert!(why.contains(expect), "reason: {why}");
    echo_round_trip(&rt);
}

#[cfg(corio_uring)]
#[test]
fn seccomp_eperm_falls_back_to_poll() {
    if is_child().as_deref() == Some("eperm") {
        return seccomp_child(libc::EPERM, "not permitted");
    }
    let out = run_child(
        "seccomp_eperm_falls_back_to_poll",
        &[("CORIO_TEST_CHILD", "eperm")],
    );
    assert!(out.status.success());
}

#[cfg(corio_uring)]
#[test]
fn seccomp_enosys_falls_back_to_poll() {
    if is_child().as_deref() == Some("enosys") {
        return seccomp_child(libc::ENOSYS, "not implemented");
    }
    let out = run_child(
        "seccomp_enosys_falls_back_to_poll",
        &[("CORIO_TEST_CHILD", "enosys")],
    );
    assert!(out.status.success());
}
