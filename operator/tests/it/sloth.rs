//! Governor's rules beside Sloth's in one real Prometheus: a Sloth-shaped rule
//! set for two SLOs (`tests/fixtures/sloth/two-slos.rules.yaml`, Sloth's
//! `slo:` names and `sloth_*` labels) and the rules `governor rules` prints
//! for two SLOs of the same service, over `governor sim serve`. Every rule
//! evaluates without error; the dashboard's burn-rate query and the
//! operator's budget query answer one series per Governor SLO or objective;
//! Sloth's own series are untouched.

use std::process::Command;
use std::time::Duration;

use governor_crds::ServiceLevelObjective;
use governor_crds::manifest::parse_documents;
use governor_tests::{Prometheus, PrometheusVersion, repo_root, wait_until};

use crate::common;
use crate::common::gate;
use crate::on_each_prometheus;

/// Two Governor SLOs of the simulator's svc-0, with labels of their own.
const SLOS: &str = "\
apiVersion: governor.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: svc-0-latency, namespace: shop, labels: {owner: shop}}
spec:
  service: svc-0
  targetRef: {name: svc-0}
  objectives: {latency: {p90: 100ms, p99: 250ms}, window: 1h}
---
apiVersion: governor.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: svc-0-errors, namespace: shop, labels: {owner: shop}}
spec:
  service: svc-0
  targetRef: {name: svc-0}
  objectives: {errorRate: 0.01, window: 1h}
";

/// Every rule of every group as Prometheus reports it: (group, rule, health,
/// last error), or `None` while a group has not been evaluated yet.
async fn rule_health(url: &str) -> Option<Vec<(String, String, String, String)>> {
    let v: serde_json::Value = reqwest::get(format!("{url}/api/v1/rules"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let mut out = Vec::new();
    for g in v["data"]["groups"].as_array()? {
        for r in g["rules"].as_array()? {
            let health = r["health"].as_str()?.to_string();
            if health == "unknown" {
                return None;
            }
            out.push((
                g["name"].as_str()?.to_string(),
                r["name"].as_str()?.to_string(),
                health,
                r["lastError"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    (!out.is_empty()).then_some(out)
}

on_each_prometheus!(governor_rules_work_beside_sloths_in_one_prometheus);
async fn governor_rules_work_beside_sloths_in_one_prometheus(version: PrometheusVersion) {
    let _slot = gate::heavy().await;
    let (_sim, sim_addr) = common::start_sim(&["--scenario", "flash-crowd", "--speed", "10"]).await;
    let rules_dir = tempfile::tempdir().unwrap();
    let slo_file = rules_dir.path().join("slos.yaml");
    std::fs::write(&slo_file, SLOS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .args([
            "rules",
            "--scrape-interval",
            "1s",
            slo_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(rules_dir.path().join("governor.rules.yaml"), &out.stdout).unwrap();
    let sloth = repo_root().join("tests/fixtures/sloth/two-slos.rules.yaml");
    std::fs::copy(&sloth, rules_dir.path().join("sloth.rules.yaml")).unwrap();
    let prom = Prometheus::start_version(
        version,
        std::slice::from_ref(&sim_addr),
        "/metrics",
        &[rules_dir.path().join("*.rules.yaml")],
        None,
    )
    .await
    .unwrap();

    // Every group evaluated at least once (the budget groups run every
    // minute), and no rule failed.
    let health = wait_until("every rule evaluated", Duration::from_secs(150), || {
        rule_health(&prom.url)
    })
    .await
    .unwrap();
    let failed: Vec<_> = health.iter().filter(|r| r.2 != "ok").collect();
    assert!(
        failed.is_empty(),
        "rules failing beside Sloth's: {failed:#?}"
    );
    let groups: std::collections::BTreeSet<&str> = health.iter().map(|r| r.0.as_str()).collect();
    println!(
        "{} rules in {} groups evaluated, none failing",
        health.len(),
        groups.len()
    );
    assert_eq!(
        groups.iter().filter(|g| g.starts_with("sloth-")).count(),
        6,
        "{groups:?}"
    );
    assert_eq!(
        groups
            .iter()
            .filter(|g| g.starts_with("governor-slo-shop-"))
            .count(),
        4,
        "{groups:?}"
    );

    // The burn rates of the dashboard's overview: one per Governor SLO.
    let burn = wait_until("burn rates", Duration::from_secs(60), || async {
        let v = prom
            .query(&governor::cluster::burn_rate_query())
            .await
            .ok()?;
        (v.len() == 2).then_some(v)
    })
    .await
    .unwrap();
    for s in &burn {
        assert_eq!(s["metric"]["namespace"], "shop", "{s}");
        let value: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        assert!(value.is_finite() && value >= 0.0, "{s}");
    }
    // The same query over Sloth's names is what broke: two Sloth SLOs give
    // duplicate match groups (no namespace, slo or objective label).
    let err = prom
        .query("max by (namespace, slo) (slo:sli_error:ratio_rate5m / on (namespace, slo, objective) slo:error_budget:ratio)")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("many-to-many") || err.contains("duplicate"),
        "{err}"
    );

    // The operator's one query for the recorded budgets: every objective of
    // both SLOs, each once.
    let slos: Vec<ServiceLevelObjective> = parse_documents(SLOS)
        .into_iter()
        .map(|d| d.result.unwrap())
        .collect();
    let refs: Vec<&ServiceLevelObjective> = slos.iter().collect();
    let query = governor::observe::budget::recorded_query(&refs);
    let budgets = wait_until("recorded budgets", Duration::from_secs(90), || async {
        let v = prom.query(&query).await.ok()?;
        (v.len() == 3).then_some(v)
    })
    .await
    .unwrap();
    let mut objectives: Vec<String> = budgets
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["metric"]["slo"].as_str().unwrap(),
                s["metric"]["objective"].as_str().unwrap()
            )
        })
        .collect();
    objectives.sort();
    assert_eq!(
        objectives,
        [
            "svc-0-errors/errors",
            "svc-0-latency/latency-p90",
            "svc-0-latency/latency-p99"
        ]
    );
    // The SLOs' own labels are on the burn-rate recordings.
    let owned = prom
        .query("governor_slo:sli_error:ratio_rate5m{owner=\"shop\"}")
        .await
        .unwrap();
    assert_eq!(owned.len(), 3, "{owned:?}");

    // Sloth's series are Sloth's alone: one per Sloth SLO under each name.
    for name in [
        "slo:sli_error:ratio_rate5m",
        "slo:error_budget:ratio",
        "slo:current_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
    ] {
        let v = prom.query(name).await.unwrap();
        let ids: std::collections::BTreeSet<&str> = v
            .iter()
            .map(|s| s["metric"]["sloth_id"].as_str().unwrap_or("(none)"))
            .collect();
        assert_eq!(
            ids,
            ["svc-0-requests-availability", "svc-0-requests-latency"].into(),
            "{name}: {v:?}"
        );
    }
}
