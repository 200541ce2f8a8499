//! `corio-bench micro WHAT RUNTIME N`: the code inside a spawned task doing
//! `N` of one small thing, for instruction counts under callgrind (run it
//! with `N` and with 0 and divide the difference: start-up cancels out).
//!
//! WHAT: `spawn` (spawn an empty task and await its handle, one at a time),
//! `spawn-many` (spawn `N`, then await every handle), `timer` (`N` tasks
//! each sleeping 1 ms, all awaited), `nop` (a NOP round trip through the
//! ring, one at a time), `nop32` (32 tasks doing NOPs, `N` in all).
//! RUNTIME: corio, tokio, glommio, monoio (NOPs: corio and raw, a plain
//! loop over the io-uring crate with corio's ring flags and no runtime:
//! one NOP, or 32, kept in flight). The `micro` scenario (`micro_table.rs`)
//! runs this as a child for its table.

use std::time::Duration;

use io_uring::{IoUring, opcode};

pub fn run(what: &str, runtime: &str, n: usize) -> Result<(), String> {
    match runtime {
        "corio" => corio::run(corio_body(what, n)),
        "tokio" => tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(tokio_body(what, n)),
        "glommio" => {
            let what = what.to_string();
            glommio::LocalExecutorBuilder::default()
                .spawn(move || glommio_body(what, n))
                .map_err(|e| e.to_string())?
                .join()
                .map_err(|e| format!("{e:?}"))?
        }
        "monoio" => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(monoio_body(what, n)),
        "raw" => raw_nops(what, n),
        other => Err(format!("micro: unknown runtime {other:?}")),
    }
}

/// `n` NOPs through a ring with corio's flags (single issuer, deferred task
/// work), `nop`: one in flight at a time, `nop32`: 32; one
/// `io_uring_enter` per wait, every completion checked.
fn raw_nops(what: &str, n: usize) -> Result<(), String> {
    let depth = match what {
        "nop" => 1,
        "nop32" => 32,
        other => return Err(format!("micro: {other:?} is not run on raw")),
    };
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .build(256)
        .map_err(|e| format!("io_uring setup: {e}"))?;
    let (mut submitted, mut done) = (0, 0);
    while done < n {
        while submitted < n && submitted - done < depth {
            let sqe = opcode::Nop::new().build().user_data(submitted as u64);
            // SAFETY: a NOP names no memory; at most 32 of the ring's 256
            // entries are ever queued.
            unsafe { ring.submission().push(&sqe) }.map_err(|_| "sq full".to_string())?;
            submitted += 1;
        }
        ring.submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter: {e}"))?;
        for cqe in ring.completion() {
            if cqe.result() < 0 {
                return Err(format!("NOP failed: {}", cqe.result()));
            }
            done += 1;
        }
    }
    Ok(())
}

async fn corio_body(what: &str, n: usize) -> Result<(), String> {
    let what = what.to_string();
    corio::spawn(async move {
        match what.as_str() {
            "spawn" => {
                for _ in 0..n {
                    corio::spawn(async {}).await.unwrap();
                }
            }
            "spawn-many" => {
                let hs: Vec<_> = (0..n).map(|_| corio::spawn(async {})).collect();
                for h in hs {
                    h.await.unwrap();
                }
            }
            "timer" => {
                let hs: Vec<_> = (0..n)
                    .map(|_| corio::spawn(corio::time::sleep(Duration::from_millis(1))))
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            }
            "nop" => {
                for _ in 0..n {
                    corio::nop().await.unwrap();
                }
            }
            "nop32" => {
                let hs: Vec<_> = (0..32)
                    .map(|_| {
                        corio::spawn(async move {
                            for _ in 0..n / 32 {
                                corio::nop().await.unwrap();
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            }
            other => return Err(format!("micro: unknown test {other:?}")),
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn tokio_body(what: &str, n: usize) -> Result<(), String> {
    let what = what.to_string();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            tokio::task::spawn_local(async move {
                match what.as_str() {
                    "spawn" => {
                        for _ in 0..n {
                            tokio::task::spawn_local(async {}).await.unwrap();
                        }
                    }
                    "spawn-many" => {
                        let hs: Vec<_> =
                            (0..n).map(|_| tokio::task::spawn_local(async {})).collect();
                        for h in hs {
                            h.await.unwrap();
                        }
                    }
                    "timer" => {
                        let hs: Vec<_> = (0..n)
                            .map(|_| {
                                tokio::task::spawn_local(tokio::time::sleep(Duration::from_millis(
                                    1,
                                )))
                            })
                            .collect();
                        for h in hs {
                            h.await.unwrap();
                        }
                    }
                    other => return Err(format!("micro: {other:?} is not run on tokio")),
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?
        })
        .await
}

async fn glommio_body(what: String, n: usize) -> Result<(), String> {
    glommio::spawn_local(async move {
        match what.as_str() {
            "spawn" => {
                for _ in 0..n {
                    glommio::spawn_local(async {}).await;
                }
            }
            "spawn-many" => {
                let hs: Vec<_> = (0..n).map(|_| glommio::spawn_local(async {})).collect();
                for h in hs {
                    h.await;
                }
            }
            "timer" => {
                let hs: Vec<_> = (0..n)
                    .map(|_| glommio::spawn_local(glommio::timer::sleep(Duration::from_millis(1))))
                    .collect();
                for h in hs {
                    h.await;
                }
            }
            other => return Err(format!("micro: {other:?} is not run on glommio")),
        }
        Ok(())
    })
    .await
}

async fn monoio_body(what: &str, n: usize) -> Result<(), String> {
    let what = what.to_string();
    monoio::spawn(async move {
        match what.as_str() {
            "spawn" => {
                for _ in 0..n {
                    monoio::spawn(async {}).await;
                }
            }
            "spawn-many" => {
                let hs: Vec<_> = (0..n).map(|_| monoio::spawn(async {})).collect();
                for h in hs {
                    h.await;
                }
            }
            "timer" => {
                let hs: Vec<_> = (0..n)
                    .map(|_| monoio::spawn(monoio::time::sleep(Duration::from_millis(1))))
                    .collect();
                for h in hs {
                    h.await;
                }
            }
            other => return Err(format!("micro: {other:?} is not run on monoio")),
        }
        Ok(())
    })
    .await
}
