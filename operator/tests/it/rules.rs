//! Burn-rate rules with the real tools: promtool checks every rule file,
//! promtool unit tests prove each tier fires, resolves and stays quiet, and a
//! real Prometheus pages through a real Alertmanager during a simulated breach.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use governor::rules::{self, Generated, Options, RuleFile, Unchecked};
use governor_crds::ServiceLevelObjective;
use governor_crds::manifest::parse_documents;
use governor_tests::{
    Alertmanager, Prometheus, PrometheusVersion, Webhook, repo_root, tools, wait_until,
};
use serde_json::json;

use crate::common;
use crate::common::gate;
use crate::on_each_prometheus;

/// Runs the promtool of Prometheus 2.x and of 3.x with `args`: they must
/// agree. Returns whether they passed, and what each printed.
fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let runs: Vec<(bool, String)> = PrometheusVersion::ALL
        .iter()
        .map(|v| {
            let out = Command::new(tools::tool(v.promtool()).unwrap())
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            let text = format!(
                "--- {} ---\n{}{}",
                v.promtool(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), text)
        })
        .collect();
    let text: String = runs.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        runs.iter().all(|(ok, _)| *ok == runs[0].0),
        "promtool 2.x and 3.x disagree on {args:?}:\n{text}"
    );
    (runs[0].0, text)
}

pub(crate) fn governor(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn promtool_accepts_the_governor_alerts_and_every_rule_file_from_the_examples() {
    let dir = tempfile::tempdir().unwrap();
    let (code, yaml, notes) = governor(&["rules", repo_root().join("examples").to_str().unwrap()]);
    assert_eq!(code, 0, "{notes}");
    let generated = dir.path().join("examples.rules.yaml");
    std::fs::write(&generated, &yaml).unwrap();
    let alerts = repo_root().join("alerts");
    let (ok, out) = promtool(
        &[
            "check",
            "rules",
            alerts.join("governor.rules.yaml").to_str().unwrap(),
            generated.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["test", "rules", "governor.test.yaml"], &alerts);
    assert!(ok, "{out}");

    // Rules per objective (both groups), against Sloth's 17; and one
    // no-data alert per SLO, the only rule without an objective.
    let file: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    let mut no_data = 0;
    for group in file["groups"].as_array().unwrap() {
        let slo = group["name"].as_str().unwrap().trim_end_matches("-budget");
        for rule in group["rules"].as_array().unwrap() {
            match rule["labels"]["objective"].as_str() {
                Some(objective) => *counts.entry(format!("{slo} {objective}")).or_insert(0) += 1,
                None => {
                    assert_eq!(rule["alert"], rules::NO_DATA_ALERT, "{rule}");
                    no_data += 1;
                }
            }
        }
    }
    println!("rules per objective: {counts:#?}");
    assert_eq!(no_data, 4, "one per example SLO");
    // The examples' objectives are P50, P90 and P99 under 100ms and a 0.1 %
    // error rate over 30 days (bookings' errors are raw PromQL, voice's
    // latency comes from Jaeger): the clauses that cannot fire are left out
    // (P50's page clauses and 3x ticket clause, P90's 14.4x clause), and so
    // are the windows only they read.
    for (key, n) in &counts {
        let want = match key.rsplit(' ').next().unwrap() {
            "latency-p50" => 6 + 3,
            "latency-p90" => 12 + 3,
            _ => 14 + 3,
        };
        assert_eq!(*n, want, "{key}");
    }
    assert_eq!(counts.len(), 12);
    assert!(
        notes.contains(
            "objective latency-p50: the page clause 14.4x over 1h and 5m is left out: \
             its threshold, 14.4 x 0.5 = 7.2, is a bad share of 1 or more"
        ) && notes
            .contains("objective latency-p90: the page clause 14.4x over 1h and 5m is left out"),
        "{notes}"
    );
    assert_eq!(notes.matches("is left out").count(), 3 * 4, "{notes}");

    // Every Governor metric the alerts read is one the operator declares, or
    // one Governor's rules record.
    let text = std::fs::read_to_string(alerts.join("governor.rules.yaml")).unwrap();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if word.starts_with("governor_") {
            assert!(
                governor::telemetry::metrics::ALL.contains(&word)
                    || word == rules::BUDGET_REMAINING,
                "alerts read {word}, which neither the operator nor Governor's rules produce"
            );
        }
    }

    // The objects the operator would own parse and name their owner kind.
    for (output, kind) in [
        ("prometheusrule", "PrometheusRule"),
        ("configmap", "ConfigMap"),
    ] {
        let (code, yaml, _) = governor(&[
            "rules",
            "--output",
            output,
            repo_root().join("examples/api.yaml").to_str().unwrap(),
        ]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(v["kind"], kind);
        assert_eq!(v["metadata"]["name"], "roadtrip-api-slo-rules");
    }
}

const CHECKOUT: &str = r#"
apiVersion: governor.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  targetRef: {name: checkout}
  objectives:
    latency: {p99: 100ms}
    window: 30d
  alerting:
    minRequestRate: 1
    labels: {team: payments}
"#;

fn slo(text: &str) -> ServiceLevelObjective {
    match &parse_documents(text)[0].result {
        Ok(s) => s.clone(),
        Err(p) => panic!("{p:?}"),
    }
}

fn rule_file(generated: &Generated) -> RuleFile {
    RuleFile {
        groups: vec![generated.group.clone().expect("a group")],
    }
}

/// The labels and annotations promtool should see on an alert whose value renders as `value`.
fn expected(generated: &Generated, alert: &str, value: &str) -> serde_json::Value {
    let rule = generated
        .group
        .as_ref()
        .unwrap()
        .rules
        .iter()
        .find(|r| r.alert.as_deref() == Some(alert))
        .unwrap();
    let annotations: std::collections::BTreeMap<String, String> = rule
        .annotations
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.replace("{{ $value | humanizePercentage }}", value),
            )
        })
        .collect();
    json!({"exp_labels": rule.labels, "exp_annotations": annotations})
}

/// Writes the rules and a promtool test of them; returns the test file.
fn unit_test(dir: &Path, generated: &Generated) -> PathBuf {
    std::fs::write(
        dir.join("slo.rules.yaml"),
        rules::to_yaml(&rule_file(generated)).unwrap(),
    )
    .unwrap();
    let count = "http_server_request_duration_seconds_count{service=\"checkout\", http_response_status_code=\"200\"}";
    let fast = "http_server_request_duration_seconds_bucket{service=\"checkout\", http_response_status_code=\"200\", le=\"0.1\"}";
    let page = |value| expected(generated, rules::PAGE_ALERT, value);
    let ticket = |value| expected(generated, rules::TICKET_ALERT, value);
    let test = json!({
        "rule_files": ["slo.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "a fast burn pages, and resolves once the short windows are clean",
                "interval": "1m",
                "input_series": [
                    // 10 requests per second; all slow for 70 minutes, then all fast.
                    {"series": count, "values": "0+600x240"},
                    {"series": fast, "values": "0x70 0+600x170"},
                ],
                "alert_rule_test": [
                    {"eval_time": "65m", "alertname": rules::PAGE_ALERT, "exp_alerts": [page("100%")]},
                    {"eval_time": "110m", "alertname": rules::PAGE_ALERT},
                ],
            },
            {
                "name": "a slow burn files a ticket without paging, and the ticket resolves",
                "interval": "1m",
                "input_series": [
                    // 5 % slow against 1 % allowed for 4 hours (a 5x burn), then clean.
                    {"series": count, "values": "0+600x600"},
                    {"series": fast, "values": "0+570x240 137400+600x360"},
                ],
                "alert_rule_test": [
                    {"eval_time": "3h", "alertname": rules::PAGE_ALERT},
                    {"eval_time": "3h", "alertname": rules::TICKET_ALERT, "exp_alerts": [ticket("5%")]},
                    {"eval_time": "10h", "alertname": rules::TICKET_ALERT},
                ],
            },
            {
                "name": "quiet under the minimum request rate",
                "interval": "1m",
                "input_series": [
                    // Half a request per second, every one slow.
                    {"series": count, "values": "0+30x120"},
                    {"series": fast, "values": "0x120"},
                ],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": rules::PAGE_ALERT},
                    {"eval_time": "90m", "alertname": rules::TICKET_ALERT},
                ],
            },
        ],
    });
    let path = dir.join("slo.test.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&test).unwrap()).unwrap();
    path
}

#[test]
fn promtool_unit_tests_prove_each_tier_fires_resolves_and_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rules::generate(&slo(CHECKOUT), &Options::default(), &Unchecked).unwrap();
    let group = generated.group.as_ref().unwrap();
    println!(
        "rules per objective: {:?}",
        rules::rules_per_objective(group)
    );
    let test = unit_test(dir.path(), &generated);
    let (ok, out) = promtool(&["test", "rules", test.to_str().unwrap()], dir.path());
    assert!(ok, "{out}");

    // The same tests against rules without the request-rate gate fail: the
    // quiet case is really tested.
    let ungated = slo(&CHECKOUT.replace("minRequestRate: 1", "minRequestRate: 0"));
    let generated = rules::generate(&ungated, &Options::default(), &Unchecked).unwrap();
    let test = unit_test(dir.path(), &generated);
    let (ok, out) = promtool(&["test", "rules", test.to_str().unwrap()], dir.path());
    assert!(!ok, "the ungated rules passed the quiet test:\n{out}");
    assert!(
        out.contains("quiet under the minimum request rate"),
        "{out}"
    );
}

#[test]
fn a_burn_just_over_the_page_rate_pages_within_five_minutes_on_a_one_day_slo() {
    // Scaled to a one-day window the page pair is 2m/2m, so a 15x burn (15 %
    // slow against 1 %) that starts at minute 10 pages by minute 13.
    let dir = tempfile::tempdir().unwrap();
    let day = slo(&CHECKOUT.replace("window: 30d", "window: 1d"));
    let generated = rules::generate(&day, &Options::default(), &Unchecked).unwrap();
    std::fs::write(
        dir.path().join("day.rules.yaml"),
        rules::to_yaml(&rule_file(&generated)).unwrap(),
    )
    .unwrap();
    let test = json!({
        "rule_files": ["day.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "name": "15x burn from minute 10",
            "interval": "1m",
            "input_series": [
                {"series": "http_server_request_duration_seconds_count{service=\"checkout\"}", "values": "0+600x30"},
                {"series": "http_server_request_duration_seconds_bucket{service=\"checkout\", le=\"0.1\"}", "values": "0+600x10 6000+510x20"},
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": rules::PAGE_ALERT},
                {"eval_time": "13m", "alertname": rules::PAGE_ALERT, "exp_alerts": [expected(&generated, rules::PAGE_ALERT, "15%")]},
            ],
        }],
    });
    promtool_test(dir.path(), "day.test.yaml", &test);
}

/// Writes a promtool unit test into `dir` as `name` and runs it; it must pass.
fn promtool_test(dir: &Path, name: &str, test: &serde_json::Value) {
    std::fs::write(dir.join(name), serde_yaml_ng::to_string(test).unwrap()).unwrap();
    let (ok, out) = promtool(&["test", "rules", name], dir);
    assert!(ok, "{out}");
}

/// GovernorErrorBudgetExhausted as promtool should render it for shop/checkout
/// at a budget of `value` (humanized).
fn exhausted(value: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("alerts/governor.rules.yaml")).unwrap();
    let file: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let rule = file["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "GovernorErrorBudgetExhausted")
        .unwrap()
        .clone();
    let render = |v: &serde_json::Value| {
        v.as_str()
            .unwrap()
            .replace("{{ $labels.namespace }}", "shop")
            .replace("{{ $labels.slo }}", "checkout")
            .replace("{{ $value | humanizePercentage }}", value)
    };
    let annotations: serde_json::Map<String, serde_json::Value> = rule["annotations"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), render(v).into()))
        .collect();
    json!({
        "exp_labels": {"namespace": "shop", "slo": "checkout", "severity": rule["labels"]["severity"]},
        "exp_annotations": annotations,
    })
}

#[test]
fn the_budget_rules_count_raw_requests_and_governor_error_budget_exhausted_fires_on_them() {
    // A one-day SLO: the budget group runs every minute over 2-minute rates.
    let dir = tempfile::tempdir().unwrap();
    let day = slo(&CHECKOUT.replace("window: 30d", "window: 1d\n    errorRate: 0.001"));
    let generated = rules::generate(&day, &Options::default(), &Unchecked).unwrap();
    let budget = generated.budget.as_ref().expect("a budget group");
    assert_eq!(budget.interval.as_deref(), Some("1m"));
    std::fs::write(
        dir.path().join("slo.rules.yaml"),
        rules::to_yaml(&RuleFile {
            groups: generated.groups(),
        })
        .unwrap(),
    )
    .unwrap();
    let alerts = repo_root().join("alerts/governor.rules.yaml");
    let count = |code: &str| {
        format!(
            "http_server_request_duration_seconds_count{{service=\"checkout\", http_response_status_code=\"{code}\"}}"
        )
    };
    let fast = "http_server_request_duration_seconds_bucket{service=\"checkout\", http_response_status_code=\"200\", le=\"0.1\"}";
    let budget_of =
        |objective: &str| format!("{}{{objective=\"{objective}\"}}", rules::BUDGET_REMAINING);
    let sample = |objective: &str, value: f64| {
        let labels = format!(
            "{}{{namespace=\"shop\", slo=\"checkout\", objective=\"{objective}\"}}",
            rules::BUDGET_REMAINING
        );
        json!({"labels": labels, "value": value})
    };
    let test = json!({
        "rule_files": ["slo.rules.yaml", alerts.to_str().unwrap()],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "no requests leave the budget unknown; half of them slow spend it",
                "interval": "1m",
                "input_series": [
                    // Nothing for 20 minutes, then 10 requests a second, half over 100ms, none failing.
                    {"series": count("200"), "values": "0x20 600+600x60"},
                    {"series": fast, "values": "0x20 300+300x60"},
                    {"series": count("500"), "values": "0x80"},
                ],
                "promql_expr_test": [
                    {"expr": rules::BUDGET_REMAINING, "eval_time": "15m", "exp_samples": []},
                    {
                        "expr": format!("{} - 0", rules::BUDGET_REMAINING),
                        "eval_time": "40m",
                        "exp_samples": [
                            // 1 - 0.5 / 0.01, and no error at all.
                            {"labels": "{namespace=\"shop\", slo=\"checkout\", objective=\"latency-p99\"}", "value": -49},
                            {"labels": "{namespace=\"shop\", slo=\"checkout\", objective=\"errors\"}", "value": 1},
                        ],
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": "GovernorErrorBudgetExhausted"},
                    {"eval_time": "40m", "alertname": "GovernorErrorBudgetExhausted", "exp_alerts": [exhausted("-4900%")]},
                ],
            },
            {
                "name": "every request fast and none failing: the whole budget left, no alert",
                "interval": "1m",
                "input_series": [
                    {"series": count("200"), "values": "0+600x60"},
                    {"series": fast, "values": "0+600x60"},
                    {"series": count("500"), "values": "0x60"},
                ],
                "promql_expr_test": [
                    {"expr": budget_of("latency-p99"), "eval_time": "30m", "exp_samples": [sample("latency-p99", 1.0)]},
                    {"expr": budget_of("errors"), "eval_time": "30m", "exp_samples": [sample("errors", 1.0)]},
                ],
                "alert_rule_test": [
                    {"eval_time": "45m", "alertname": "GovernorErrorBudgetExhausted"},
                ],
            },
        ],
    });
    promtool_test(dir.path(), "budget.test.yaml", &test);
}

#[test]
fn hostile_names_stay_inside_their_labels_and_annotations() {
    let hostile = slo(&CHECKOUT.replace(
        "service: checkout",
        "service: \"check\\\"out\\\\ {{ .Labels }} \\n}\"",
    ));
    let generated = rules::generate(&hostile, &Options::default(), &Unchecked).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.rules.yaml");
    std::fs::write(&path, rules::to_yaml(&rule_file(&generated)).unwrap()).unwrap();
    let (ok, out) = promtool(&["check", "rules", path.to_str().unwrap()], dir.path());
    assert!(ok, "{out}");
    for rule in &generated.group.unwrap().rules {
        for (k, v) in &rule.annotations {
            assert!(
                !v.contains("{{ .Labels }}"),
                "a template action survived in {k}: {v}"
            );
        }
    }
}

#[test]
fn template_actions_in_alert_labels_stay_literal_even_past_validation() {
    // Validation refuses `{{` in alert label values; an SLO that skipped it
    // still cannot put a template in a label Prometheus would expand.
    let mut hostile = slo(CHECKOUT);
    hostile
        .spec
        .alerting
        .labels
        .insert("team".into(), "{{ if }}{{ query \"up\" }}".into());
    assert!(!hostile.spec.validate().is_empty());
    let generated = rules::generate(&hostile, &Options::default(), &Unchecked).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("labels.rules.yaml");
    std::fs::write(&path, rules::to_yaml(&rule_file(&generated)).unwrap()).unwrap();
    let (ok, out) = promtool(&["check", "rules", path.to_str().unwrap()], dir.path());
    assert!(ok, "{out}");
    for rule in generated
        .group
        .unwrap()
        .rules
        .iter()
        .filter(|r| r.alert.is_some())
    {
        assert_eq!(
            rule.labels["team"],
            "{{ \"{{\" }} if }}{{ \"{{\" }} query \"up\" }}"
        );
    }
}

#[test]
fn the_longest_slo_name_gives_valid_object_names_and_labels() {
    let long = format!("checkout-{}", "a".repeat(244));
    assert_eq!(long.len(), 253);
    let mut text = CHECKOUT.replace(
        "name: checkout, namespace",
        &format!("name: {long}, namespace"),
    );
    text.push('\n');
    let slo = slo(&text);
    let group = rules::generate(&slo, &Options::default(), &Unchecked)
        .unwrap()
        .group
        .unwrap();
    let name = rules::rules_object_name(&long);
    assert!(name.len() <= 253 && name.ends_with("-slo-rules"), "{name}");
    for object in [
        rules::prometheus_rule(&slo, std::slice::from_ref(&group), &Default::default()),
        rules::config_map(&slo, std::slice::from_ref(&group), &Default::default()).unwrap(),
    ] {
        let meta = &object["metadata"];
        assert_eq!(meta["name"], name.as_str());
        let label = meta["labels"]["governor.dev/slo"].as_str().unwrap();
        assert_eq!(label, governor_crds::label_value(&long));
        assert!(governor_crds::names::is_label_value(label), "{label}");
        assert!(
            label.len() <= 63 && label.starts_with("checkout-aaa"),
            "{label}"
        );
        if let Some(data) = object.get("data") {
            let key = data.as_object().unwrap().keys().next().unwrap();
            assert!(key.len() <= 253 && key.ends_with(".rules.yaml"), "{key}");
        }
    }
    // A short name is kept as it is.
    assert_eq!(rules::rules_object_name("checkout"), "checkout-slo-rules");
    assert_eq!(governor_crds::label_value("checkout"), "checkout");
}

/// flash-crowd's load steps from 100 to 500 rps at this simulated second.
const LOAD_STEP: f64 = 600.0;
const SPEED: f64 = 10.0;

on_each_prometheus!(a_fast_burn_pages_through_alertmanager);
async fn a_fast_burn_pages_through_alertmanager(version: PrometheusVersion) {
    let _slot = gate::heavy().await;
    let webhook = Webhook::start().await.unwrap();
    let am = Alertmanager::start(&webhook.url).await.unwrap();
    // flash-crowd: 100 rps for 10 simulated minutes, then 500 rps on the two
    // fixed replicas. At 10x, the burn starts about 60 s in.
    let (_sim, sim_addr) = common::start_sim(&["--scenario", "flash-crowd", "--speed", "10"]).await;
    let rules_dir = tempfile::tempdir().unwrap();
    let glob = rules_dir.path().join("*.rules.yaml");
    let prom = Prometheus::start_version(
        version,
        std::slice::from_ref(&sim_addr),
        "/metrics",
        &[glob],
        Some(&am.url),
    )
    .await
    .unwrap();

    // A one-day SLO shortens time: the page windows scale from 1h/5m to 2m/2m.
    let dir = tempfile::tempdir().unwrap();
    let slo_file = dir.path().join("svc.yaml");
    std::fs::write(
        &slo_file,
        "apiVersion: governor.dev/v1alpha1\nkind: ServiceLevelObjective\n\
         metadata: {name: svc-0, namespace: e2e}\n\
         spec:\n  service: svc-0\n  targetRef: {name: svc-0}\n\
         \x20 objectives:\n    latency: {p99: 100ms}\n    window: 1d\n\
         \x20 alerting: {minRequestRate: 1, ticket: false}\n",
    )
    .unwrap();
    common::wait_for_reading(&prom.url, &slo_file, "svc-0", "/observation/latency/p99").await;

    // Bucket boundaries checked against the live series: 100ms is one.
    let (code, yaml, notes) = governor(&[
        "rules",
        "--prometheus",
        &prom.url,
        slo_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{notes}");
    assert!(!notes.contains("not checked"), "{notes}");
    assert!(yaml.contains("le=\"0.1\""));
    // 110ms is not: the nearest boundary is named, and refused without allowNearestBucket.
    let odd = dir.path().join("odd.yaml");
    std::fs::write(
        &odd,
        std::fs::read_to_string(&slo_file)
            .unwrap()
            .replace("p99: 100ms", "p99: 110ms"),
    )
    .unwrap();
    let (code, _, problems) =
        governor(&["rules", "--prometheus", &prom.url, odd.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        problems.contains("objectives.latency.p99") && problems.contains("nearest is le=\"0.1\""),
        "{problems}"
    );

    std::fs::write(rules_dir.path().join("svc.rules.yaml"), &yaml).unwrap();
    prom.reload().await.unwrap();
    wait_until("the rules to load", Duration::from_secs(30), || async {
        let v: serde_json::Value = reqwest::get(format!("{}/api/v1/rules", prom.url))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (!v["data"]["groups"].as_array()?.is_empty()).then_some(())
    })
    .await
    .unwrap();

    // A 1 s target, its boundary unchecked: the rule matches the bucket by
    // number, although 3.x stores it as le="1.0" where the simulator wrote "1".
    let second = slo(&std::fs::read_to_string(&slo_file)
        .unwrap()
        .replace("p99: 100ms", "p99: 1s"));
    let generated = rules::generate(&second, &Options::default(), &Unchecked).unwrap();
    let ratio = generated
        .group
        .unwrap()
        .rules
        .into_iter()
        .find(|r| r.record.as_deref() == Some(&format!("{}2m", rules::ERROR_RATIO)))
        .unwrap()
        .expr;
    assert!(!prom.query(&ratio).await.unwrap().is_empty(), "{ratio}");
    let literal = prom
        .query("http_server_request_duration_seconds_bucket{service=\"svc-0\", le=\"1\"}")
        .await
        .unwrap();
    assert_eq!(
        literal.is_empty(),
        version == PrometheusVersion::V3,
        "le=\"1\" as written by the simulator: {literal:?}"
    );

    // The rules are in place before the burn: the load step is still ahead.
    let sim_time = common::truth(&sim_addr, 5).await[0]["sim_time"]
        .as_f64()
        .unwrap();
    assert!(
        sim_time < LOAD_STEP,
        "the burn began before the rules loaded ({sim_time} s)"
    );
    let page = wait_until("the page", Duration::from_secs(300), || async {
        webhook.received().into_iter().find_map(|(at, body)| {
            let alert = body["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == rules::PAGE_ALERT && a["status"] == "firing")?
                .clone();
            Some((at, alert))
        })
    })
    .await
    .unwrap();
    // When the load stepped up, in wall-clock time, from the simulated clock.
    let now_sim = common::truth(&sim_addr, 5).await[0]["sim_time"]
        .as_f64()
        .unwrap();
    let step_at = Instant::now() - Duration::from_secs_f64((now_sim - LOAD_STEP) / SPEED);
    let after = page.0.saturating_duration_since(step_at);
    println!(
        "page delivered {:.0} s after the load step that starts the burn",
        after.as_secs_f64()
    );
    assert!(after < Duration::from_secs(300));
    let labels = &page.1["labels"];
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["tier"], "page");
    assert_eq!(labels["slo"], "svc-0");
    assert_eq!(labels["namespace"], "e2e");
    assert_eq!(labels["objective"], "latency-p99");
    assert!(
        page.1["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .contains("#errorbudgetburnpage")
    );
}

/// A one-day checkout SLO with its own labels and a route per tier.
const ROUTED: &str = r#"
apiVersion: governor.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: checkout
  namespace: shop
  labels: {owner: shop-team, app.kubernetes.io/name: checkout}
spec:
  service: checkout
  targetRef: {name: checkout}
  objectives:
    latency: {p99: 100ms}
    window: 1d
  alerting:
    minRequestRate: 1
    labels: {team: payments}
    routes:
      page:
        alert: CheckoutLatencyPage
        labels: {severity: page, pager: checkout-oncall}
        annotations: {runbook_url: "https://wiki.example/checkout/page"}
      ticket: {labels: {severity: ticket}}
      noData: {labels: {severity: info}, annotations: {summary: "checkout exports nothing"}}
"#;

#[test]
fn routes_name_and_label_each_tier_and_the_no_data_alert_fires_when_metrics_go_absent() {
    let routed = slo(ROUTED);
    assert!(routed.spec.validate().is_empty());
    let generated = rules::generate(&routed, &Options::default(), &Unchecked).unwrap();
    let group = generated.group.as_ref().unwrap();
    let alert = |name: &str| {
        group
            .rules
            .iter()
            .find(|r| r.alert.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name}"))
    };
    // Names, labels and annotations per tier; Governor's ids stay.
    let page = alert("CheckoutLatencyPage");
    assert_eq!(page.labels["severity"], "page");
    assert_eq!(page.labels["pager"], "checkout-oncall");
    assert_eq!(page.labels["team"], "payments");
    assert_eq!(
        (&page.labels["tier"], &page.labels["objective"]),
        (&"page".to_string(), &"latency-p99".to_string())
    );
    assert_eq!(
        page.annotations["runbook_url"],
        "https://wiki.example/checkout/page"
    );
    assert_eq!(alert(rules::TICKET_ALERT).labels["severity"], "ticket");
    assert!(
        group
            .rules
            .iter()
            .all(|r| r.alert.as_deref() != Some(rules::PAGE_ALERT))
    );
    // The SLO's labels on its burn-rate recordings, not the prefixed one, and
    // not on the budget group, whose sums over the window a changed label
    // would split.
    for r in group.rules.iter().filter(|r| r.record.is_some()) {
        assert_eq!(r.labels.get("owner").map(String::as_str), Some("shop-team"));
        assert!(r.labels.keys().all(|k| !k.contains('/')), "{:?}", r.labels);
    }
    for r in &generated.budget.as_ref().unwrap().rules {
        assert!(!r.labels.contains_key("owner"), "{:?}", r.labels);
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("routed.rules.yaml"),
        rules::to_yaml(&rule_file(&generated)).unwrap(),
    )
    .unwrap();
    let count = "http_server_request_duration_seconds_count{service=\"checkout\"}";
    let fast = "http_server_request_duration_seconds_bucket{service=\"checkout\", le=\"0.1\"}";
    let mut page_labels = serde_json::to_value(&page.labels).unwrap();
    // The alert keeps the labels of the series it fired on: the SLO's own.
    page_labels["owner"] = "shop-team".into();
    let page_expected = json!({
        "exp_labels": page_labels,
        "exp_annotations": expected(&generated, "CheckoutLatencyPage", "100%")["exp_annotations"],
    });
    let absent = alert(rules::NO_DATA_ALERT);
    assert_eq!(absent.labels["severity"], "info");
    assert_eq!(absent.annotations["summary"], "checkout exports nothing");
    assert!(
        absent.annotations["runbook_url"].ends_with("README.md#slosignalabsent"),
        "{:?}",
        absent.annotations
    );
    let mut absent_labels = serde_json::to_value(&absent.labels).unwrap();
    // absent_over_time labels its answer with the selector's equality matchers.
    absent_labels["service"] = "checkout".into();
    let test = json!({
        "rule_files": ["routed.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "name": "every request slow pages under the routed name; then the metrics stop",
            "interval": "1m",
            "input_series": [
                // 10 requests a second, all slow, for 20 minutes; then nothing.
                {"series": count, "values": "0+600x20 _x40"},
                {"series": fast, "values": "0x20 _x40"},
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "CheckoutLatencyPage", "exp_alerts": [page_expected]},
                {"eval_time": "10m", "alertname": rules::NO_DATA_ALERT},
                {"eval_time": "29m", "alertname": rules::NO_DATA_ALERT},
                {"eval_time": "31m", "alertname": rules::NO_DATA_ALERT, "exp_alerts": [{
                    "exp_labels": absent_labels,
                    "exp_annotations": absent.annotations,
                }]},
                {"eval_time": "31m", "alertname": "CheckoutLatencyPage"},
            ],
        }],
    });
    promtool_test(dir.path(), "routed.test.yaml", &test);

    // Switched off, there is no such alert.
    let quiet = slo(&ROUTED.replace("minRequestRate: 1", "minRequestRate: 1\n    noData: false"));
    let generated = rules::generate(&quiet, &Options::default(), &Unchecked).unwrap();
    assert!(
        generated
            .group
            .unwrap()
            .rules
            .iter()
            .all(|r| r.alert.as_deref() != Some(rules::NO_DATA_ALERT))
    );
}
