//! Live mode: the five kinds listed from the cluster of the current kubeconfig.

use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use crate::api::{Account, Member, Object, Role, RoleBinding, Team};
use crate::engine::Index;

use super::Error;

/// Lists Accounts, Members, Teams, Roles and RoleBindings in `namespace` (the kubeconfig's
/// namespace when `None`), or in every namespace, into an index.
pub async fn cluster_index(namespace: Option<&str>, all: bool) -> Result<Index, Error> {
    let client = Client::try_default()
        .await
        .map_err(|e| Error::Cluster(e.to_string()))?;
    let namespace = namespace.map_or_else(|| client.default_namespace().to_owned(), str::to_owned);
    let mut index = Index::new();
    let scope = (!all).then_some(namespace.as_str());
    for object in list::<Account>(&client, scope, Object::Account).await? {
        index.apply(object);
    }
    for object in list::<Member>(&client, scope, Object::Member).await? {
        index.apply(object);
    }
    for object in list::<Team>(&client, scope, Object::Team).await? {
        index.apply(object);
    }
    for object in list::<Role>(&client, scope, Object::Role).await? {
        index.apply(object);
    }
    for object in list::<RoleBinding>(&client, scope, Object::RoleBinding).await? {
        index.apply(object);
    }
    Ok(index)
}

async fn list<K>(
    client: &Client,
    namespace: Option<&str>,
    wrap: fn(K) -> Object,
) -> Result<Vec<Object>, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::Cluster(format!("listing {}: {e}", K::plural(&()))))?;
    Ok(list.items.into_iter().map(wrap).collect())
}
