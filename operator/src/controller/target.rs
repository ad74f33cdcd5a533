//! The actuation port over the Kubernetes API: replicas through the target's
//! scale subresource, the pool size through server-side apply of one ConfigMap
//! key (and optionally a pod-template annotation). Governor writes only objects
//! that opt in with the `governor.dev/managed: "true"` annotation, and never
//! takes a field another manager owns.

use governor_crds::ServiceLevelObjectiveSpec as Spec;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use super::{Error, Leader, MANAGER};
use crate::report::Reach;
use governor_crds::conditions::reason;

/// Label on every object Governor creates for an SLO.
pub const SLO_LABEL: &str = "governor.dev/slo";
/// Pod-template annotation carrying the pool size, when `rollPods` is set.
pub const POOL_ANNOTATION: &str = "governor.dev/pool-size";
/// The annotation by which an object Governor did not create lets it write
/// (the target, the pool ConfigMap) or instantiate it (a warm-up CronJob).
/// Whoever may set it may edit the object, so Governor acts with no more than
/// that person's rights.
pub const MANAGED_ANNOTATION: &str = "governor.dev/managed";

/// Whether an object opted in to Governor's writes.
pub fn opted_in(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(MANAGED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Why Governor will not write `what`: it did not opt in.
fn not_opted_in(what: &str) -> Error {
    Error::NotManaged {
        object: what.to_string(),
        reason: format!(
            "not annotated {MANAGED_ANNOTATION}: \"true\"; Governor writes only objects that opt in"
        ),
    }
}

/// A write refused because another field manager owns the field.
fn conflict(what: &str, source: kube::Error) -> Error {
    match source {
        kube::Error::Api(s) if s.code == 409 => Error::NotManaged {
            object: what.to_string(),
            reason: format!(
                "another field manager owns the field Governor would write ({})",
                s.message
            ),
        },
        e => Error::api(format!("writing {what}"), e),
    }
}

/// The workload an SLO tunes.
pub struct Target {
    api: Api<DynamicObject>,
    /// "Deployment roadtrip/roadtrip-api", for messages.
    pub describe: String,
    name: String,
    /// The HorizontalPodAutoscaler whose minReplicas Governor moves instead of
    /// the scale subresource (`scaling.driveHpa`).
    pub driven_hpa: Option<Hpa>,
}

/// An HPA scaling a target: what Governor needs to drive it.
#[derive(Clone, Debug, PartialEq)]
pub struct Hpa {
    pub namespace: String,
    pub name: String,
    pub max_replicas: u32,
}

/// The HPA in `hpas` that scales `spec.targetRef` in `namespace`, if any.
pub fn hpa_for(
    hpas: &[std::sync::Arc<HorizontalPodAutoscaler>],
    namespace: &str,
    spec: &Spec,
) -> Option<Hpa> {
    let r = &spec.target_ref;
    let group = |api_version: &str| {
        api_version
            .rsplit_once('/')
            .map_or("", |(g, _)| g)
            .to_string()
    };
    hpas.iter()
        .filter(|h| h.metadata.namespace.as_deref() == Some(namespace))
        .filter_map(|h| {
            let target = &h.spec.scale_target_ref;
            (target.kind == r.kind
                && target.name == r.name
                && target
                    .api_version
                    .as_deref()
                    .is_none_or(|v| group(v) == group(&r.api_version)))
            .then(|| Hpa {
                namespace: namespace.to_string(),
                name: h.name_any(),
                max_replicas: h.spec.max_replicas.max(1) as u32,
            })
        })
        .min_by(|a, b| a.name.cmp(&b.name))
}

/// How the target is reached, for the `TargetFound` condition: through its
/// scale subresource, or through the minReplicas of the HPA that scales it.
pub fn reach(target: &Target, hpa: Option<&Hpa>, drive_hpa: bool) -> Reach {
    let hpa_name = |h: &Hpa| format!("HorizontalPodAutoscaler {}/{}", h.namespace, h.name);
    let describe = &target.describe;
    match (hpa, drive_hpa) {
        (Some(h), true) => Reach {
            reason: reason::DRIVING_HPA,
            message: format!(
                "{describe}: replicas set through the minReplicas of {} (at most its maxReplicas {})",
                hpa_name(h),
                h.max_replicas
            ),
        },
        (Some(h), false) => Reach {
            reason: reason::HPA_NOT_DRIVEN,
            message: format!(
                "{describe} is also scaled by {}; set spec.scaling.driveHpa so Governor moves its minReplicas instead of competing with it",
                hpa_name(h)
            ),
        },
        (None, true) => Reach {
            reason: reason::NO_HPA,
            message: format!(
                "spec.scaling.driveHpa is set but no HorizontalPodAutoscaler scales {describe}; replicas set through its scale subresource"
            ),
        },
        (None, false) => Reach {
            reason: reason::SCALE_SUBRESOURCE,
            message: format!("{describe}: replicas set through its scale subresource"),
        },
    }
}

impl Target {
    /// Resolves `spec.targetRef` to an API resource (well-known kinds without a
    /// discovery call).
    pub async fn resolve(client: &Client, namespace: &str, spec: &Spec) -> Result<Self, Error> {
        let r = &spec.target_ref;
        let (group, version) = match r.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), r.api_version.clone()),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, &r.kind);
        let ar = match (group.as_str(), r.kind.as_str()) {
            ("apps", "Deployment") => ApiResource::from_gvk_with_plural(&gvk, "deployments"),
            ("apps", "StatefulSet") => ApiResource::from_gvk_with_plural(&gvk, "statefulsets"),
            ("apps", "ReplicaSet") => ApiResource::from_gvk_with_plural(&gvk, "replicasets"),
            _ => match kube::discovery::pinned_kind(client, &gvk).await {
                Ok((ar, _)) => ar,
                Err(_) => {
                    return Err(Error::TargetMissing(format!(
                        "{} {namespace}/{} (the API server does not serve {}/{})",
                        r.kind, r.name, r.api_version, r.kind
                    )));
                }
            },
        };
        Ok(Self {
            api: Api::namespaced_with(client.clone(), namespace, &ar),
            describe: format!("{} {namespace}/{}", r.kind, r.name),
            name: r.name.clone(),
            driven_hpa: None,
        })
    }

    /// Replicas the workload asks for, from its scale subresource.
    /// Refuses a target that did not opt in.
    pub async fn replicas(&self) -> Result<u32, Error> {
        match self.api.get_opt(&self.name).await {
            Ok(Some(object)) if opted_in(&object.metadata) => {}
            Ok(Some(_)) => return Err(not_opted_in(&self.describe)),
            Ok(None) => return Err(Error::TargetMissing(self.describe.clone())),
            Err(e) => return Err(Error::api(format!("reading {}", self.describe), e)),
        }
        match self.api.get_scale(&self.name).await {
            Ok(scale) => Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                Err(Error::TargetMissing(self.describe.clone()))
            }
            Err(e) => Err(Error::api(
                format!("reading the scale of {}", self.describe),
                e,
            )),
        }
    }

    /// Sets replicas through the scale subresource, or, when driving an HPA,
    /// sets its minReplicas (capped at its maxReplicas). Returns what was asked for.
    pub async fn scale(
        &self,
        client: &Client,
        leader: &Leader,
        replicas: u32,
    ) -> Result<u32, Error> {
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..PatchParams::default()
        };
        leader.guard()?;
        if let Some(hpa) = &self.driven_hpa {
            let min = replicas.clamp(1, hpa.max_replicas);
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &hpa.namespace);
            return api
                .patch(
                    &hpa.name,
                    &params,
                    &Patch::Merge(serde_json::json!({ "spec": { "minReplicas": min } })),
                )
                .await
                .map(|_| min)
                .map_err(|e| {
                    Error::api(
                        format!(
                            "setting minReplicas of HorizontalPodAutoscaler {}/{}",
                            hpa.namespace, hpa.name
                        ),
                        e,
                    )
                });
        }
        self.api
            .patch_scale(
                &self.name,
                &params,
                &Patch::Merge(serde_json::json!({ "spec": { "replicas": replicas } })),
            )
            .await
            .map(|_| replicas)
            .map_err(|e| Error::api(format!("scaling {}", self.describe), e))
    }

    /// The per-replica pool size in the configured ConfigMap key, when set.
    pub async fn pool_size(
        &self,
        client: &Client,
        namespace: &str,
        spec: &Spec,
    ) -> Result<Option<u32>, Error> {
        let Some(pool) = &spec.connection_pool else {
            return Ok(None);
        };
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let cm = api.get_opt(&pool.config_map.name).await.map_err(|e| {
            Error::api(
                format!("reading ConfigMap {namespace}/{}", pool.config_map.name),
                e,
            )
        })?;
        Ok(cm
            .and_then(|c| c.data)
            .and_then(|d| d.get(&pool.config_map.key).cloned())
            .and_then(|v| v.trim().parse::<u32>().ok()))
    }

    /// Writes the pool size (server-side apply of one key), and stamps the pod
    /// template when the application cannot reload it.
    pub async fn set_pool_size(
        &self,
        client: &Client,
        leader: &Leader,
        namespace: &str,
        spec: &Spec,
        size: u32,
    ) -> Result<(), Error> {
        let Some(pool) = &spec.connection_pool else {
            return Ok(());
        };
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let what = format!("ConfigMap {namespace}/{}", pool.config_map.name);
        match api.get_opt(&pool.config_map.name).await {
            Ok(Some(cm)) if opted_in(&cm.metadata) => {}
            Ok(Some(_)) => return Err(not_opted_in(&what)),
            Ok(None) => {
                return Err(Error::NotManaged {
                    object: what,
                    reason: format!(
                        "not found: create it, annotated {MANAGED_ANNOTATION}: \"true\", for Governor to write the pool size in it"
                    ),
                });
            }
            Err(e) => return Err(Error::api(format!("reading {what}"), e)),
        }
        let patch = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": pool.config_map.name },
            "data": { pool.config_map.key.clone(): size.to_string() },
        });
        // No force: a key another manager owns stays theirs.
        leader.guard()?;
        api.patch(
            &pool.config_map.name,
            &PatchParams::apply(MANAGER),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|e| conflict(&what, e))?;
        if pool.roll_pods {
            let patch = serde_json::json!({
                "spec": { "template": { "metadata": { "annotations": { POOL_ANNOTATION: size.to_string() } } } }
            });
            let params = PatchParams {
                field_manager: Some(MANAGER.into()),
                ..PatchParams::default()
            };
            leader.guard()?;
            self.api
                .patch(&self.name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    Error::api(
                        format!("annotating the pod template of {}", self.describe),
                        e,
                    )
                })?;
        }
        Ok(())
    }
}
