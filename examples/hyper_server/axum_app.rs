//! `--axum`: the same server with an axum `Router` as its service (routes, a
//! JSON extractor, shared state), served by hyper on corio.
//!
//! axum is built without its `tokio` feature: the router, extractors and
//! responses need no runtime. What does need tokio's runtime is left out:
//! `axum::serve` (tokio's listener; hyper's `serve_connection` on corio does
//! its job here), WebSocket upgrades (`ws` feature) and `ConnectInfo`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper::Request;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use tower_service::Service;

/// State shared by every request of a shard.
#[derive(Clone, Default)]
pub struct Hits(Arc<AtomicU64>);

#[derive(Deserialize)]
struct Greet {
    name: String,
    times: u32,
}

#[derive(Serialize)]
struct Greeting {
    greeting: String,
    hits: u64,
}

/// The router: `GET /`, `POST /greet` (JSON in and out), `GET /hits`.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello from axum on corio!\n" }))
        .route("/greet", post(greet))
        .route("/hits", get(|State(hits): State<Hits>| async move { hits.0.load(Ordering::Relaxed).to_string() }))
        .with_state(Hits::default())
}

async fn greet(State(hits): State<Hits>, Json(req): Json<Greet>) -> Json<Greeting> {
    let n = hits.0.fetch_add(1, Ordering::Relaxed) + 1;
    Json(Greeting {
        greeting: vec![format!("Hello, {}!", req.name); req.times as usize].join(" "),
        hits: n,
    })
}

/// Calls the router for one hyper request.
pub async fn handle(
    mut router: Router,
    req: Request<Incoming>,
) -> Result<axum::response::Response, Infallible> {
    router.call(req).await
}
