//! A webhook receiver on a free loopback port: records every JSON body POSTed
//! to it, with the time it arrived (Alertmanager's notifications in tests).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::routing::post;

pub struct Webhook {
    /// The URL to give senders, e.g. http://127.0.0.1:PORT/hook.
    pub url: String,
    received: Arc<Mutex<Vec<(Instant, serde_json::Value)>>>,
}

impl Webhook {
    pub async fn start() -> crate::Result<Self> {
        let received: Arc<Mutex<Vec<(Instant, serde_json::Value)>>> = Arc::default();
        let sink = received.clone();
        let router = Router::new().route(
            "/hook",
            post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let sink = sink.clone();
                async move {
                    if let Ok(mut s) = sink.lock() {
                        s.push((Instant::now(), body));
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self {
            url: format!("http://{addr}/hook"),
            received,
        })
    }

    /// Every body received so far, with its arrival time.
    pub fn received(&self) -> Vec<(Instant, serde_json::Value)> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
