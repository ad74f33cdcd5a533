//! Putting an SLO's rules on a cluster: the PrometheusRule and ConfigMap objects
//! that hold them, and their server-side apply (or removal).

use governor_crds::{ServiceLevelObjective, derived_name, label_value};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};

use super::{ExtraMetadata, RuleFile, RuleGroup, to_yaml};

/// A PrometheusRule (prometheus-operator) holding the groups (each with its
/// own `interval` when it has one), owned by the SLO.
pub fn prometheus_rule(
    slo: &ServiceLevelObjective,
    groups: &[RuleGroup],
    extra: &ExtraMetadata,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": object_meta(slo, extra),
        "spec": { "groups": groups },
    })
}

/// A VictoriaMetrics operator VMRule holding the groups, with the same name,
/// labels and owner as the PrometheusRule.
pub fn vm_rule(
    slo: &ServiceLevelObjective,
    groups: &[RuleGroup],
    extra: &ExtraMetadata,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "operator.victoriametrics.com/v1beta1",
        "kind": "VMRule",
        "metadata": object_meta(slo, extra),
        "spec": { "groups": groups },
    })
}

/// A ConfigMap holding the groups as a Prometheus rule file, owned by the SLO.
pub fn config_map(
    slo: &ServiceLevelObjective,
    groups: &[RuleGroup],
    extra: &ExtraMetadata,
) -> Result<serde_json::Value, serde_yaml_ng::Error> {
    let name = slo.metadata.name.clone().unwrap_or_default();
    let text = to_yaml(&RuleFile {
        groups: groups.to_vec(),
    })?;
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(slo, extra),
        "data": { derived_name(&name, ".rules.yaml"): text },
    }))
}

/// The name of the objects holding an SLO's rules: `<slo>-slo-rules`, hashed
/// when that would pass 253 characters.
pub fn rules_object_name(slo_name: &str) -> String {
    derived_name(slo_name, "-slo-rules")
}

/// Name `<slo>-slo-rules`, the SLO's namespace, the installation's extra
/// labels and annotations, Governor's own labels (managed-by and the SLO),
/// and an owner reference to the SLO when it has a uid (so deleting the SLO
/// deletes them).
fn object_meta(slo: &ServiceLevelObjective, extra: &ExtraMetadata) -> serde_json::Value {
    let name = slo.metadata.name.clone().unwrap_or_default();
    let mut labels = extra.labels.clone();
    // Parsing refuses these keys in the extra labels; set last all the same.
    let [managed_by, slo_label] = super::metadata::OWN_LABELS;
    labels.insert(managed_by.into(), "governor".into());
    labels.insert(slo_label.into(), label_value(&name));
    let mut meta = serde_json::json!({
        "name": rules_object_name(&name),
        "namespace": slo.metadata.namespace,
        "labels": labels,
    });
    if !extra.annotations.is_empty() {
        meta["annotations"] = serde_json::json!(extra.annotations);
    }
    if let Some(uid) = &slo.metadata.uid {
        meta["ownerReferences"] = serde_json::json!([{
            "apiVersion": "governor.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "name": name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    meta
}

/// Why an SLO's rules could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the SLO has no {0}")]
    Incomplete(&'static str),
    #[error("{what} {object}: {}", crate::error::api_text(.source))]
    Api {
        what: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot write the rules as YAML: {0}")]
    Yaml(#[source] serde_yaml_ng::Error),
    /// An object of that name exists and is not this SLO's: Governor never
    /// takes over an object it did not create.
    #[error("{kind} {object} exists and is not owned by this SLO; rename or remove it")]
    NotOurs { kind: &'static str, object: String },
}

/// Where an SLO's rules went when applied to a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    PrometheusRule(String),
    ConfigMap(String),
    /// Alerting is off or no objective can be alerted on; stale rules were removed.
    Nothing,
}

/// Whether the cluster serves prometheus-operator's PrometheusRule.
pub async fn has_prometheus_rule(client: &kube::Client) -> Result<bool, kube::Error> {
    match client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
    {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == "prometheusrules")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

fn prometheus_rule_resource() -> kube::discovery::ApiResource {
    kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    )
}

/// A failed API call on `object` ("namespace/name").
fn api_error(what: &'static str, object: &str, source: kube::Error) -> ApplyError {
    ApplyError::Api {
        what,
        object: object.to_string(),
        source,
    }
}

/// Applies one SLO's rule groups (server-side apply, field manager
/// `governor`): a PrometheusRule when the cluster has the CRD, otherwise a
/// ConfigMap; both owned by the SLO, and the other kind removed if Governor
/// left one earlier. No groups removes both.
pub async fn apply(
    client: &kube::Client,
    slo: &ServiceLevelObjective,
    groups: &[RuleGroup],
    prometheus_operator: bool,
    extra: &ExtraMetadata,
) -> Result<Applied, ApplyError> {
    let namespace = slo
        .metadata
        .namespace
        .clone()
        .ok_or(ApplyError::Incomplete("namespace"))?;
    let name = rules_object_name(
        slo.metadata
            .name
            .as_deref()
            .ok_or(ApplyError::Incomplete("name"))?,
    );
    let object = format!("{namespace}/{name}");
    // No force: a field another manager owns stays theirs (a conflict is an error).
    let params = PatchParams::apply("governor");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let rules_api: Option<Api<DynamicObject>> = prometheus_operator
        .then(|| Api::namespaced_with(client.clone(), &namespace, &prometheus_rule_resource()));
    if groups.is_empty() {
        remove_config_map(slo, &config_maps, &name, &object).await?;
        if let Some(api) = &rules_api {
            remove_prometheus_rule(slo, api, &name, &object).await?;
        }
        return Ok(Applied::Nothing);
    };
    match rules_api {
        Some(api) => {
            let existing = api
                .get_opt(&name)
                .await
                .map_err(|e| api_error("reading PrometheusRule", &object, e))?;
            ensure_ours(slo, existing.map(|o| o.metadata), "PrometheusRule", &object)?;
            let rule = prometheus_rule(slo, groups, extra);
            api.patch(&name, &params, &Patch::Apply(&rule))
                .await
                .map_err(|e| api_error("applying PrometheusRule", &object, e))?;
            remove_config_map(slo, &config_maps, &name, &object).await?;
            Ok(Applied::PrometheusRule(name.clone()))
        }
        None => {
            let existing = config_maps
                .get_opt(&name)
                .await
                .map_err(|e| api_error("reading ConfigMap", &object, e))?;
            ensure_ours(slo, existing.map(|o| o.metadata), "ConfigMap", &object)?;
            let map = config_map(slo, groups, extra).map_err(ApplyError::Yaml)?;
            config_maps
                .patch(&name, &params, &Patch::Apply(&map))
                .await
                .map_err(|e| api_error("applying ConfigMap", &object, e))?;
            Ok(Applied::ConfigMap(name.clone()))
        }
    }
}

/// Whether `meta` names this SLO as its owner: by UID, or an earlier SLO of
/// the same name in this namespace (deleted and re-created before the garbage
/// collector removed what Governor made for it).
fn owned_by(slo: &ServiceLevelObjective, meta: &ObjectMeta) -> bool {
    let (Some(uid), Some(name)) = (&slo.metadata.uid, &slo.metadata.name) else {
        return false;
    };
    meta.owner_references
        .iter()
        .flatten()
        .filter(|r| r.kind == "ServiceLevelObjective" && r.api_version.starts_with("governor.dev/"))
        .any(|r| &r.uid == uid || &r.name == name)
}

/// Refuses an existing object that this SLO does not own.
fn ensure_ours(
    slo: &ServiceLevelObjective,
    existing: Option<ObjectMeta>,
    kind: &'static str,
    object: &str,
) -> Result<(), ApplyError> {
    match existing {
        Some(meta) if !owned_by(slo, &meta) => Err(ApplyError::NotOurs {
            kind,
            object: object.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Deletes the ConfigMap `name`, only if this SLO owns it.
async fn remove_config_map(
    slo: &ServiceLevelObjective,
    config_maps: &Api<ConfigMap>,
    name: &str,
    object: &str,
) -> Result<(), ApplyError> {
    match config_maps.get_opt(name).await {
        Ok(Some(cm)) if owned_by(slo, &cm.metadata) => config_maps
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|e| api_error("deleting ConfigMap", object, e)),
        Ok(_) => Ok(()),
        Err(e) => Err(api_error("reading ConfigMap", object, e)),
    }
}

/// Deletes the PrometheusRule `name`, only if this SLO owns it.
async fn remove_prometheus_rule(
    slo: &ServiceLevelObjective,
    api: &Api<DynamicObject>,
    name: &str,
    object: &str,
) -> Result<(), ApplyError> {
    match api.get_opt(name).await {
        Ok(Some(rule)) if owned_by(slo, &rule.metadata) => api
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ())
            .or_else(|e| match e {
                kube::Error::Api(s) if s.code == 404 => Ok(()),
                e => Err(api_error("deleting PrometheusRule", object, e)),
            }),
        Ok(_) => Ok(()),
        Err(e) => Err(api_error("reading PrometheusRule", object, e)),
    }
}
