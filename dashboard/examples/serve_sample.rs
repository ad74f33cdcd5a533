//! Serves the dashboard over N sample SLOs: for load tests (`bench/dashboard.sh`).
//! Usage: cargo run --release -p governor-dashboard --example serve_sample -- ADDR N

use governor_dashboard::{Config, router, sample};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("serve_sample: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("serving {n} sample SLOs on http://{addr}/");
    if let Err(e) = axum::serve(listener, router(sample::model(n), Config::default())).await {
        eprintln!("serve_sample: {e}");
        std::process::exit(1);
    }
}
