//! One calibration point on the real thing: a real PostgreSQL, two processes
//! of the reference service and the load generator, against the simulator at
//! the same parameters; and the pool size following its file.

use std::time::Duration;

use governor_bench_real::calibrate::{Fleet, Point, Settings, run_point};
use governor_tests::{Postgres, wait_until};

const SERVICE: &str = env!("CARGO_BIN_EXE_bench-service");

/// Real over simulated, allowed: within 50 % against the simulator as
/// configured, and within 30 % against the simulator given the worker time
/// the real replicas measured they added (timer rounding, the runtime; about
/// 2 ms a request on the shared 2-core machine). Measured here: about 1.25
/// and 1.15 at P50, 1.1 and 1.05 at P99.
const RAW_TOLERANCE: f64 = 0.50;
const ADJUSTED_TOLERANCE: f64 = 0.30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_service_matches_the_simulator_at_one_point() -> governor_tests::Result<()> {
    let db = Postgres::start().await?;
    let point = Point {
        replicas: 2,
        pool: 4,
        rate: 150.0,
    };
    let settings = Settings {
        seconds: 25.0,
        warmup: 5.0,
        ..Settings::default()
    };
    let row = run_point(std::path::Path::new(SERVICE), &db.url(), point, &settings).await?;
    eprintln!("{}", serde_json::to_string(&row)?);
    assert!(row.real_sent > 2_000, "too few requests counted: {row:?}");
    assert_eq!(row.real_errors, 0.0, "{row:?}");
    let hit = row
        .real_hit_rate
        .expect("the replicas export cache counters");
    assert!(
        (hit - 0.9).abs() < 0.03,
        "warm hit rate {hit}, expected 0.9"
    );
    let overhead = row
        .real_overhead
        .expect("the replicas export their overhead");
    assert!(
        (0.0..0.010).contains(&overhead),
        "the real stack adds {overhead} s of worker time a request"
    );
    for (name, ratio, tolerance) in [
        ("p50", row.ratio_p50, RAW_TOLERANCE),
        ("p99", row.ratio_p99, RAW_TOLERANCE),
        ("adjusted p50", row.adjusted_ratio_p50, ADJUSTED_TOLERANCE),
        ("adjusted p99", row.adjusted_ratio_p99, ADJUSTED_TOLERANCE),
    ] {
        let ratio = ratio.expect("real and simulated quantiles");
        assert!(
            (ratio - 1.0).abs() <= tolerance,
            "real/sim {name} = {ratio:.2}, outside 1 ± {tolerance}: {row:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn pool_size_follows_its_file() -> governor_tests::Result<()> {
    let db = Postgres::start().await?;
    let fleet = Fleet::start(std::path::Path::new(SERVICE), &db.url(), 1, 3).await?;
    assert_eq!(fleet.metric("db_client_connections_max").await?, Some(3.0));
    let file = &fleet.replicas[0].pool_file;
    std::fs::write(file, "7\n")?;
    wait_until(
        "the pool gauge to read 7",
        Duration::from_secs(10),
        || async {
            (fleet.metric("db_client_connections_max").await.ok()? == Some(7.0)).then_some(())
        },
    )
    .await?;
    // A value that is not a pool size is logged and keeps the pool as it was.
    std::fs::write(file, "0\n")?;
    let replica = &fleet.replicas[0];
    wait_until(
        "the bad pool size to be logged",
        Duration::from_secs(10),
        || async {
            replica
                .server
                .log_tail(20)
                .contains("pool size must be between 1 and 10000, got 0")
                .then_some(())
        },
    )
    .await?;
    assert_eq!(fleet.metric("db_client_connections_max").await?, Some(7.0));
    // Requests that miss the cache use the pool: its used + idle connections
    // stay within the new size.
    let http = reqwest::Client::new();
    for i in 0..20 {
        let r = http
            .get(format!("{}/item/k{i}", fleet.replicas[0].url))
            .send()
            .await?;
        assert!(r.status().is_success(), "{}", r.status());
    }
    let misses = fleet.metric("cache_misses_total").await?;
    assert_eq!(misses, Some(20.0));
    Ok(())
}
