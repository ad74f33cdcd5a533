//! What an SLO's author can make Governor do, on a real API server with the
//! chart's RBAC scoped to one namespace (`watchNamespaces`: Roles only, the
//! operator started with `--namespace`): only objects that opt in are
//! written, an object of another owner is never taken over (and a refused rule
//! file does not stop actuation), and an HTTP warm-up
//! reaches only a Service of the SLO's namespace, with GET, no redirects and a
//! capped timeout, in the background.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use governor_crds::ServiceLevelObjective;
use governor_tests::{Prometheus, repo_root, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::common;
use crate::common::gate;
use crate::common::operator::{deployment, start_operator};

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// The Service's backend: records each request; `/redirect` points elsewhere,
/// `/slow` answers after 5 s.
async fn backend(State(seen): State<Seen>, req: Request) -> impl IntoResponse {
    let path = req.uri().path().to_string();
    seen.lock()
        .unwrap()
        .push((req.method().to_string(), path.clone()));
    match path.as_str() {
        "/redirect" => (
            StatusCode::FOUND,
            [(header::LOCATION, "/elsewhere")],
            "moved",
        )
            .into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into_response()
        }
        _ => "warm".into_response(),
    }
}

fn example(file: &str, edit: impl Fn(&mut serde_json::Value)) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("examples").join(file)).unwrap();
    let mut v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    v["metadata"].as_object_mut().unwrap().remove("namespace");
    v["spec"]["objectives"]["evaluationInterval"] = "3s".into();
    edit(&mut v);
    v
}

async fn events_of(events: &Api<Event>, name: &str, reason: &str) -> Vec<String> {
    events
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// The note of the first Event `reason` on `name`, waited for up to 120 s.
async fn first_event(events: &Api<Event>, name: &str, reason: &str) -> String {
    let what = format!("a {reason} Event on {name}");
    wait_until(&what, Duration::from_secs(120), || async {
        events_of(events, name, reason).await.into_iter().next()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn governor_writes_only_what_opts_in_and_warms_only_a_service_of_the_namespace() {
    let _slot = gate::heavy().await;
    let common::operator::Cluster {
        cp,
        ns,
        kubeconfig,
        dir: _dir,
    } = common::operator::cluster_scoped("tenant").await;
    let params = PatchParams::apply("governor-tests");
    let deployments: Api<Deployment> = Api::namespaced(cp.client.clone(), &ns.name);
    let config_maps: Api<ConfigMap> = Api::namespaced(cp.client.clone(), &ns.name);
    // Opted in: roadtrip-api and roadtrip-stories. Not: plain.
    for name in ["roadtrip-api", "roadtrip-stories"] {
        deployments
            .patch(name, &params, &Patch::Apply(deployment(name, 2)))
            .await
            .unwrap();
    }
    let mut plain = deployment("plain", 2);
    plain["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    deployments
        .patch("plain", &params, &Patch::Apply(plain))
        .await
        .unwrap();
    // Opted in, but its key belongs to this test's field manager.
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "roadtrip-api-db", "annotations": {"governor.dev/managed": "true"}},
        "data": {"pool_size": "50"}});
    config_maps
        .patch("roadtrip-api-db", &params, &Patch::Apply(cm))
        .await
        .unwrap();

    // The warm-up Service: a port on loopback, reached by its cluster name.
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(backend).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let services: Api<Service> = Api::namespaced(cp.client.clone(), &ns.name);
    let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "warm"},
        "spec": {"ports": [{"name": "http", "port": port}]}});
    services
        .patch("warm", &params, &Patch::Apply(svc))
        .await
        .unwrap();

    let theirs = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "roadtrip-stories-slo-rules"}, "data": {"owner": "someone else"}});
    config_maps
        .patch("roadtrip-stories-slo-rules", &params, &Patch::Apply(theirs))
        .await
        .unwrap();
    let slos: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    let api_slo = example("api.yaml", |v| {
        v["spec"].as_object_mut().unwrap().remove("cache");
    });
    let stories_slo = example("stories.yaml", |v| {
        v["spec"].as_object_mut().unwrap().remove("connectionPool");
        v["spec"]["cache"]["warmUp"]["http"] = serde_json::json!({
            "service": "warm", "port": port, "timeout": "1s",
            "paths": ["/a", "/redirect", "/slow"],
        });
    });
    let plain_slo = example("api.yaml", |v| {
        v["metadata"]["name"] = "plain".into();
        v["spec"]["targetRef"]["name"] = "plain".into();
        for key in ["cache", "connectionPool"] {
            v["spec"].as_object_mut().unwrap().remove(key);
        }
    });
    for v in [&api_slo, &stories_slo, &plain_slo] {
        slos.patch(
            v["metadata"]["name"].as_str().unwrap(),
            &params,
            &Patch::Apply(v),
        )
        .await
        .unwrap();
    }

    let (_sim, sim_addr) = common::start_sim(&["--scenario", "audit", "--speed", "20"]).await;
    let prom = Prometheus::start(std::slice::from_ref(&sim_addr))
        .await
        .unwrap();
    let host = format!("warm.{}.svc.cluster.local=127.0.0.1", ns.name);
    let _op = start_operator(
        "tenant",
        &kubeconfig,
        &ns.name,
        &prom.url,
        &["--resolve", &host, "--namespace", &ns.name],
    );
    let events: Api<Event> = Api::namespaced(cp.client.clone(), &ns.name);

    // A target that did not opt in: refused in a condition and an Event.
    let condition = wait_until("plain refused", Duration::from_secs(60), || async {
        let slo = slos.get("plain").await.ok()?;
        slo.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "TargetFound" && c.reason == "NotManaged")
    })
    .await
    .unwrap();
    assert_eq!(condition.status, "False");
    assert!(
        condition.message.contains("governor.dev/managed"),
        "{}",
        condition.message
    );
    let notes = events_of(&events, "plain", "NotManaged").await;
    assert!(!notes.is_empty(), "no NotManaged Event on plain");

    // The stories warm-up: GET to each path of the Service, the redirect not
    // followed, the slow path given up after the 1 s timeout.
    let failed = first_event(&events, "roadtrip-stories", "WarmUpFailed").await;
    assert!(
        failed.contains("2 of 3 paths failed") && failed.contains("redirects are not followed"),
        "{failed}"
    );
    let requests = seen.lock().unwrap().clone();
    for path in ["/a", "/redirect", "/slow"] {
        assert!(
            requests.contains(&("GET".to_string(), path.to_string())),
            "{path} not requested: {requests:?}"
        );
    }
    assert!(
        requests
            .iter()
            .all(|(m, p)| m == "GET" && p != "/elsewhere"),
        "{requests:?}"
    );

    // The stories rules object's name was taken by someone else's ConfigMap:
    // not taken over, said so in a condition and an Event, and actuation went
    // on (replicas raised to minReplicas 3, the warm-up above).
    let stories = slos.get("roadtrip-stories").await.unwrap().status.unwrap();
    let rules = stories
        .conditions
        .iter()
        .find(|c| c.type_ == "AlertRules")
        .expect("an AlertRules condition");
    assert_eq!(
        (rules.status.as_str(), rules.reason.as_str()),
        ("False", "AlertRulesRefused")
    );
    assert!(
        rules
            .message
            .contains("exists and is not owned by this SLO"),
        "{}",
        rules.message
    );
    assert!(
        !events_of(&events, "roadtrip-stories", "AlertRulesRefused")
            .await
            .is_empty()
    );
    let theirs = config_maps.get("roadtrip-stories-slo-rules").await.unwrap();
    assert_eq!(theirs.data.unwrap()["owner"], "someone else");
    assert!(theirs.metadata.owner_references.is_none());
    let scaled = deployments
        .get("roadtrip-stories")
        .await
        .unwrap()
        .spec
        .replicas;
    assert!(scaled >= Some(3), "stories not scaled: {scaled:?}");

    // The pool key another manager owns is never taken.
    let refused = first_event(&events, "roadtrip-api", "NotManaged").await;
    assert!(
        refused.contains("ConfigMap")
            && refused.contains("roadtrip-api-db")
            && refused.contains("another field manager owns"),
        "{refused}"
    );
    let cm = config_maps.get("roadtrip-api-db").await.unwrap();
    assert_eq!(cm.data.unwrap()["pool_size"], "50");
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.manager)
        .collect();
    assert!(!managers.contains(&"governor".to_string()), "{managers:?}");
    // Deleted and re-created under the same name (no garbage collector runs
    // here, so the old rules object is still there): the new SLO's rules are
    // applied again, and the object now names the new SLO as its owner.
    let first = slos.get("plain").await.unwrap();
    let old_uid = first.metadata.uid.clone().unwrap();
    slos.delete("plain", &Default::default()).await.unwrap();
    wait_until("plain deleted", Duration::from_secs(30), || async {
        slos.get_opt("plain").await.ok()?.is_none().then_some(())
    })
    .await
    .unwrap();
    let again = slos
        .patch("plain", &params, &Patch::Apply(&plain_slo))
        .await
        .unwrap();
    let new_uid = again.metadata.uid.clone().unwrap();
    assert_ne!(old_uid, new_uid);
    let rules_name = "plain-slo-rules";
    wait_until("the rules re-applied", Duration::from_secs(60), || async {
        let cm = config_maps.get_opt(rules_name).await.ok()??;
        cm.metadata
            .owner_references?
            .iter()
            .any(|r| r.uid == new_uid)
            .then_some(())
    })
    .await
    .unwrap();
    // And the target that did not opt in was never scaled.
    assert_eq!(
        deployments.get("plain").await.unwrap().spec.replicas,
        Some(2)
    );
}
