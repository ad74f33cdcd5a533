//! Scenario tests: Governor on every built-in scenario keeps its safety rules,
//! and `governor simulate` keeps the interface scripts rely on.

use std::process::Command;

use governor::decide::connection_budget;
use governor::sim::bench::run;
use governor::sim::scenario::{BUILT_IN, Scenario};

#[test]
fn governor_keeps_bounds_and_budget_in_every_scenario() {
    for name in BUILT_IN {
        let scenario = Scenario::built_in(name).unwrap();
        let f = run(&scenario, "governor", 1).unwrap();
        let (min, max) = (
            scenario.spec.scaling.min_replicas as u32,
            scenario.spec.scaling.max_replicas as u32,
        );
        assert!(
            f.min_replicas_seen >= min && f.max_replicas_seen <= max,
            "{name}: replicas {}..{} outside [{min}, {max}]",
            f.min_replicas_seen,
            f.max_replicas_seen
        );
        let budget = connection_budget(&scenario.spec).unwrap();
        assert!(
            f.peak_db_connections <= f64::from(budget),
            "{name}: {} connections over the budget {budget}",
            f.peak_db_connections
        );
    }
}

#[test]
fn db_bound_holds_replicas_and_reports_the_bottleneck() {
    let scenario = Scenario::built_in("db-bound").unwrap();
    let f = run(&scenario, "governor", 1).unwrap();
    assert!(f.bottleneck_reported, "{f:?}");
    let before = f.replicas_before_breach.expect("the scenario breaches");
    assert!(
        f.max_replicas_seen <= before + 1,
        "scaled into the bottleneck: {before} -> {}",
        f.max_replicas_seen
    );
}

#[test]
fn governor_beats_static_on_the_audit() {
    let scenario = Scenario::built_in("audit").unwrap();
    let governor = run(&scenario, "governor", 2).unwrap();
    let fixed = run(&scenario, "static", 2).unwrap();
    assert!(
        governor.p99_violation_minutes * 4.0 < fixed.p99_violation_minutes,
        "{governor:?}\n{fixed:?}"
    );
    assert!(governor.error_rate < fixed.error_rate);
}

fn simulate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .arg("simulate")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn json_interface() {
    let (ok, stdout, stderr) = simulate(&[
        "--scenario",
        "flash-crowd",
        "--policy",
        "governor,hpa-cpu",
        "--seeds",
        "1",
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("2/2]"), "progress on stderr: {stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows.len(), 2);
    for key in [
        "scenario",
        "policy",
        "seeds",
        "p50_violation_minutes",
        "p90_violation_minutes",
        "p99_violation_minutes",
        "replica_minutes",
        "scaling_actions",
        "peak_db_connections",
        "db_connection_limit",
        "error_rate",
        "cache_hit_rate",
        "bottleneck_reported",
    ] {
        assert!(rows[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(rows[1]["policy"], "hpa-cpu");
    assert_eq!(rows[1]["replica_minutes_vs_hpa_cpu"], 1.0);
}

#[test]
fn trace_runs_are_named_after_the_file_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("black-friday.csv");
    std::fs::write(&trace, "seconds,rps\n0,100\n300,400\n600,100\n").unwrap();
    let (ok, stdout, stderr) = simulate(&[
        "--trace",
        trace.to_str().unwrap(),
        "--policy",
        "static",
        "--seeds",
        "1",
        "--format",
        "csv",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("black-friday,static,1,"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "0,100\n10,abc\n").unwrap();
    let (ok, _, stderr) = simulate(&["--trace", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("bad.csv:2"), "{stderr}");
    // Absurd or non-finite values are refused by line and field, before the
    // simulator sizes anything by them.
    for (text, line, field) in [
        (
            "0,100\n1e300,100\n",
            2,
            "seconds 1e300 is past the longest trace",
        ),
        (
            "seconds,rps\n0,100\n3000000,100\n",
            3,
            "seconds 3000000 is past",
        ),
        (
            "0,100\ninf,100\n",
            2,
            "seconds must be a finite number >= 0",
        ),
        ("0,100\n10,NaN\n", 2, "rps must be a finite number >= 0"),
        ("-5,100\n", 1, "seconds must be a finite number >= 0"),
        (
            "0,1e300\n",
            1,
            "rps 1e300 is more than this simulator handles",
        ),
    ] {
        let absurd = dir.path().join("absurd.csv");
        std::fs::write(&absurd, text).unwrap();
        let (ok, _, stderr) = simulate(&["--trace", absurd.to_str().unwrap()]);
        assert!(!ok, "{text:?} was accepted");
        assert!(!stderr.contains("panicked"), "{text:?}: {stderr}");
        assert!(
            stderr.contains(&format!("absurd.csv:{line}: ")) && stderr.contains(field),
            "{text:?}: expected line {line} and {field:?} in:\n{stderr}"
        );
    }
    let (ok, _, stderr) = simulate(&["--scenario", "nope"]);
    assert!(!ok);
    assert!(stderr.contains("unknown scenario \"nope\""), "{stderr}");
    let (ok, _, stderr) = simulate(&["--policy", "keda"]);
    assert!(!ok);
    assert!(stderr.contains("unknown policy"), "{stderr}");
}

#[test]
fn a_sweep_charts_every_setting_and_a_lower_cpu_target_never_costs_less() {
    let dir = tempfile::tempdir().unwrap();
    // A rising load: 80 to 480 rps over 20 minutes.
    let trace = dir.path().join("rising.csv");
    std::fs::write(&trace, "seconds,rps\n0,80\n1200,480\n").unwrap();
    let charts = dir.path().join("charts");
    let (ok, stdout, stderr) = simulate(&[
        "--trace",
        trace.to_str().unwrap(),
        "--sweep",
        "--seeds",
        "1",
        "--svg",
        charts.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let policies: Vec<&str> = rows.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    let mut want = vec!["governor", "oracle"];
    want.extend([
        "hpa-cpu:30",
        "hpa-cpu:40",
        "hpa-cpu:50",
        "hpa-cpu:60",
        "hpa-cpu:70",
        "hpa-cpu:80",
        "hpa-cpu:90",
    ]);
    want.extend([
        "hpa-latency:0.5",
        "hpa-latency:0.6",
        "hpa-latency:0.7",
        "hpa-latency:0.8",
        "hpa-latency:0.9",
        "hpa-latency:1",
    ]);
    assert_eq!(policies, want);
    assert!(rows[0]["dominated_by"].is_array(), "{}", rows[0]);

    // The chart is well-formed XML with one point per setting, where the figures put it.
    let text = std::fs::read_to_string(charts.join("rising.svg")).unwrap();
    let svg = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(svg.root_element().tag_name().name(), "svg");
    let points: Vec<roxmltree::Node> = svg
        .descendants()
        .filter(|n| n.attribute("class") == Some("point"))
        .collect();
    assert_eq!(points.len(), rows.len(), "{text}");
    for row in &rows {
        let policy = row["policy"].as_str().unwrap();
        let point = points
            .iter()
            .find(|p| p.attribute("data-policy") == Some(policy))
            .unwrap_or_else(|| panic!("no point for {policy}"));
        let cost: f64 = point
            .attribute("data-replica-minutes")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (cost - row["replica_minutes"].as_f64().unwrap()).abs() < 0.01,
            "{policy}: {cost} against {row}"
        );
        assert!(point.descendants().any(|n| n.has_tag_name("title")));
    }

    // On a rising load, a lower CPU target never costs fewer replica-minutes.
    let cost = |policy: &str| {
        rows.iter().find(|r| r["policy"] == policy).unwrap()["replica_minutes"]
            .as_f64()
            .unwrap()
    };
    for pair in want[2..9].windows(2) {
        assert!(
            cost(pair[0]) >= cost(pair[1]),
            "{} costs {} but {} costs {}",
            pair[0],
            cost(pair[0]),
            pair[1],
            cost(pair[1])
        );
    }
    assert!(cost("hpa-cpu:30") > cost("hpa-cpu:90"));
}

#[test]
fn hpa_settings_are_named_in_full_and_bad_ones_refused() {
    let (ok, stdout, stderr) = simulate(&[
        "--scenario",
        "step-down",
        "--policy",
        "hpa-cpu,hpa-cpu:50.0",
        "--seeds",
        "1",
        "--format",
        "csv",
    ]);
    assert!(ok, "{stderr}");
    let names: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(names, ["hpa-cpu", "hpa-cpu:50"]);
    for (policy, says) in [
        ("hpa-cpu:0", "above 0"),
        ("hpa-cpu:abc", "\"abc\""),
        ("hpa-latency:-1", "\"-1\""),
        ("governor,hpa-rps", "unknown policy \"hpa-rps\""),
    ] {
        let (ok, _, stderr) = simulate(&["--policy", policy, "--seeds", "1"]);
        assert!(!ok, "{policy} was accepted");
        assert!(
            stderr.contains("--policy") && stderr.contains(says) && !stderr.contains("panicked"),
            "{policy}: {stderr}"
        );
    }
    let (ok, _, stderr) = simulate(&["--sweep", "--policy", "governor"]);
    assert!(!ok && stderr.contains("--sweep"), "{stderr}");
}
