//! Per-op latency histograms (`Builder::op_latency`, `corio::runtime::op_latency`).

mod support;

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use corio::net::TcpListener;
use corio::runtime::{OpLatency, op_latency, reset_op_latency};

fn kind<'a>(lat: &'a [OpLatency], kind: &str) -> &'a OpLatency {
    lat.iter()
        .find(|l| l.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {lat:?}"))
}

both_drivers! {
    fn counts_and_a_slow_read_measured_at_least_its_wait() {
        let rt = support::builder().op_latency(true).build().unwrap();
        rt.block_on(async {
            for _ in 0..10 {
                corio::nop().await.unwrap();
            }
            let lat = op_latency();
            let nop = kind(&lat, "Nop");
            assert_eq!(nop.count, 10);
            assert!(nop.p50 <= nop.p99 && nop.p99 <= nop.max, "{nop:?}");

            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let writer = std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                go_rx.recv().unwrap();
                std::thread::sleep(Duration::from_millis(30));
                c.write_all(b"late").unwrap();
                c
            });
            let (stream, _) = listener.accept().await.unwrap();
            reset_op_latency();
            // The peer writes 30 ms after the read was submitted (told so
            // after the read's first poll, not after connecting: under load
            // the accept alone can take 30 ms, and the data was then there
            // before the read), so the read waits >= 30 ms.
            let mut read = std::pin::pin!(stream.read(vec![0u8; 16]));
            let mut go = Some(go_tx);
            let (n, _) = std::future::poll_fn(|cx| {
                let r = read.as_mut().poll(cx);
                if let Some(go) = go.take() {
                    go.send(()).unwrap();
                }
                r
            })
            .await;
            assert_eq!(n.unwrap(), 4);
            let lat = op_latency();
            assert!(lat.iter().all(|l| l.kind != "Nop"), "reset forgets: {lat:?}");
            let read = kind(&lat, "Recv");
            assert_eq!(read.count, 1, "{lat:?}");
            assert!(read.max >= Duration::from_millis(20), "{read:?}");
            assert!(read.p50 >= Duration::from_millis(16), "{read:?}");
            drop(writer.join().unwrap());
        });
        // The runtime's own view, outside block_on.
        assert!(!rt.op_latency().is_empty());
    }
}

both_drivers! {
    fn off_by_default() {
        let rt = support::runtime();
        rt.block_on(async {
            corio::nop().await.unwrap();
            assert!(op_latency().is_empty());
            reset_op_latency();
        });
        assert!(rt.op_latency().is_empty());
    }
}
