//! Where Governor watches and acts: every namespace, or only those listed with
//! `--namespace` (the chart's `watchNamespaces`, which then grants Roles in
//! those namespaces instead of ClusterRoles).

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// The namespaces in scope; none listed means every namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Scope over `namespaces` (duplicates dropped); empty means every namespace.
    pub fn new(mut namespaces: Vec<String>) -> Self {
        namespaces.sort();
        namespaces.dedup();
        Self(namespaces)
    }

    /// Each watch target: `None` for every namespace, else one per namespace.
    pub fn each(&self) -> Vec<Option<String>> {
        if self.0.is_empty() {
            vec![None]
        } else {
            self.0.iter().cloned().map(Some).collect()
        }
    }

    /// "every namespace", or the list, for logs.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            "every namespace".into()
        } else {
            self.0.join(", ")
        }
    }
}

/// The API of `K` in `namespace`, or in every namespace.
pub fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// One store per namespace in scope, read as one.
pub struct Stores<K: Resource + 'static>(Vec<Store<K>>)
where
    K::DynamicType: Eq + Hash + Clone;

impl<K: Resource + 'static> Clone for Stores<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K: Resource + Clone + 'static> Stores<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    pub fn new(stores: Vec<Store<K>>) -> Self {
        Self(stores)
    }

    /// Every object in every store.
    pub fn state(&self) -> Vec<Arc<K>> {
        self.0.iter().flat_map(Store::state).collect()
    }

    /// Waits until every store has been listed once.
    pub async fn wait_until_ready(&self) -> bool {
        for store in &self.0 {
            if store.wait_until_ready().await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Watches `K` in every namespace of `scope` into stores (one reflector per
/// namespace: a store holds one watch's objects); a failing watch is logged
/// as `what`, and retried with backoff.
pub fn reflect<K>(client: &Client, scope: &Scope, what: &'static str) -> Stores<K>
where
    K: Resource<Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let stores = scope
        .each()
        .into_iter()
        .map(|namespace| {
            let (store, writer) = reflector::store();
            let api = api::<K>(client, namespace.as_deref());
            tokio::spawn(async move {
                let stream = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .reflect(writer)
                    .applied_objects();
                futures::pin_mut!(stream);
                while let Some(item) = stream.next().await {
                    if let Err(e) = item {
                        tracing::warn!(error = %e, "watching {what}");
                    }
                }
            });
            store
        })
        .collect();
    Stores(stores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_scope_is_every_namespace_and_a_list_is_one_watch_each() {
        assert_eq!(Scope::default().each(), vec![None]);
        let scope = Scope::new(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(scope.each(), vec![Some("a".into()), Some("b".into())]);
        assert_eq!(scope.describe(), "a, b");
    }
}
