//! The `tracing` feature: a span per task, events per op, park/unpark and
//! runtime setup, seen by a small recording subscriber.
//! Run with `cargo test --features tracing --test observe_tracing`.
#![cfg(feature = "tracing")]

mod support;

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corio::net::TcpListener;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// What the subscriber saw: spans (name, fields) and events (target, level, fields).
#[derive(Default)]
struct Seen {
    spans: HashMap<u64, (String, HashMap<String, String>)>,
    events: Vec<(String, tracing::Level, HashMap<String, String>)>,
    entered: u64,
}

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    next: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = HashMap::new();
        span.record(&mut Fields(&mut fields));
        fields.insert("target".into(), span.metadata().target().to_string());
        let mut seen = self.seen.lock().unwrap();
        seen.spans
            .insert(id, (span.metadata().name().to_string(), fields));
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut seen = self.seen.lock().unwrap();
        if let Some((_, fields)) = seen.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let m = event.metadata();
        self.seen
            .lock()
            .unwrap()
            .events
            .push((m.target().to_string(), *m.level(), fields));
    }
    fn enter(&self, _: &Id) {
        self.seen.lock().unwrap().entered += 1;
    }
    fn exit(&self, _: &Id) {}
}

both_drivers! {
    fn tasks_ops_and_the_runtime_are_traced() {
        let rec = Recorder::default();
        let line = tracing::subscriber::with_default(rec.clone(), || {
            let rt = support::runtime();
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let mut client = std::net::TcpStream::connect(addr).unwrap();
                let (stream, _) = listener.accept().await.unwrap();
                let line = line!() + 1;
                let task = corio::spawn(async move { stream.read(vec![0u8; 8]).await.0.unwrap() });
                corio::time::sleep(Duration::from_millis(5)).await;
                client.write_all(b"abc").unwrap();
                assert_eq!(task.await.unwrap(), 3);
                corio::nop().await.unwrap();
                line
            })
        });
        let seen = rec.seen.lock().unwrap();

        // The runtime's setup, at INFO.
        let built = seen
            .events
            .iter()
            .find(|(t, l, f)| t == "corio::runtime" && *l == tracing::Level::INFO && f.contains_key("driver"))
            .expect("a runtime-built event");
        let driver = &built.2["driver"];
        assert!(driver == "Uring" || driver == "Poll", "{driver}");

        // The task's span, with tokio-console's field names.
        let (name, fields) = seen
            .spans
            .values()
            .find(|(_, f)| f.get("loc.line") == Some(&line.to_string()))
            .expect("a span for the spawned task");
        assert_eq!(name, "runtime.spawn");
        assert_eq!(fields["target"], "tokio::task");
        assert_eq!(fields["kind"], "task");
        assert!(fields["loc.file"].ends_with("observe_tracing.rs"));
        assert!(fields.contains_key("task.id"));
        assert_eq!(fields["shard"], "0");
        assert!(seen.entered >= 2, "the span is entered for each poll");

        // Op events: the read names its fd and took at least the 5 ms wait.
        let ops: Vec<_> = seen.events.iter().filter(|(t, _, _)| t == "corio::op").collect();
        let nop = ops.iter().find(|(_, _, f)| f["op"] == "Nop").expect("a Nop event");
        assert_eq!(nop.1, tracing::Level::TRACE);
        assert_eq!(nop.2["result"], "Ok(0)");
        let read = ops.iter().find(|(_, _, f)| f["op"] == "Recv").expect("a Recv event");
        assert!(read.2["fd"].parse::<i32>().is_ok(), "{:?}", read.2);
        assert_eq!(read.2["result"], "Ok(3)");
        assert!(read.2["took_us"].parse::<u64>().unwrap() >= 4_000, "{:?}", read.2);

        // Park and unpark.
        let park = |m: &str| {
            seen.events.iter().any(|(t, _, f)| t == "corio::runtime" && f.get("message").map(String::as_str) == Some(m))
        };
        assert!(park("park") && park("unpark"));
    }
}
