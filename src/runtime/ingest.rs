//! Watches feed the shared state: one per kind (and per namespace when limited), shared by the
//! controller and the webhook. Each object's spec goes to the index and its uid, generation and
//! status to the records (see [`crate::state::kept`]); the state decides which objects each change
//! reconciles.
//!
//! Objects are decoded one by one (kube's `DeserializeGuard`): an object that does not decode (a
//! stored object written before a schema change, or by a tool that skipped validation) is
//! reported — a log line, `rolegate_undecodable_objects`, a Warning Event on it — and left out,
//! while the rest of the list syncs.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::NamespaceResourceScope;
use kube::core::error_boundary::{DeserializeGuard, InvalidObject};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::api::{API_VERSION, KindOf};
use crate::metrics::KindLabels;
use crate::state::Shared;
use crate::state::kept::Storable;

fn namespace<K: Resource>(o: &K) -> String {
    crate::api::namespace_of(o.meta())
}

/// What a watched kind must be.
pub trait Watched:
    KindOf
    + Storable
    + Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}
impl<K> Watched for K where
    K: KindOf
        + Storable
        + Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// Reports an object that did not decode: log, metric and, where a client is at hand, an Event.
fn report<K: Watched>(shared: &Shared, recorder: Option<&Recorder>, bad: &InvalidObject) {
    let (ns, name) = (
        crate::api::namespace_of(&bad.metadata),
        bad.metadata.name.clone().unwrap_or_default(),
    );
    tracing::warn!(
        kind = %K::KIND, namespace = %ns, name = %name, error = %bad.error,
        "object does not decode; left out of the caches until it is fixed"
    );
    shared
        .metrics
        .undecodable_objects
        .get_or_create(&KindLabels {
            kind: K::KIND.as_str().to_owned(),
        })
        .inc();
    let Some(recorder) = recorder.cloned() else {
        return;
    };
    let reference = ObjectReference {
        api_version: Some(API_VERSION.to_owned()),
        kind: Some(K::KIND.as_str().to_owned()),
        namespace: Some(ns),
        name: Some(name),
        uid: bad.metadata.uid.clone(),
        resource_version: bad.metadata.resource_version.clone(),
        ..ObjectReference::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "Undecodable".to_owned(),
        note: Some(truncate(&bad.error, 1000)),
        action: "Watch".to_owned(),
        secondary: None,
    };
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::warn!(%error, "publishing the Undecodable event failed");
            }
        });
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// Keeps the objects that decoded; reports and drops the others.
pub fn sift<K: Watched>(
    event: watcher::Event<DeserializeGuard<K>>,
    shared: &Shared,
    recorder: Option<&Recorder>,
) -> Option<watcher::Event<K>> {
    let keep = |guard: DeserializeGuard<K>| match guard.0 {
        Ok(o) => Some(o),
        Err(bad) => {
            report::<K>(shared, recorder, &bad);
            None
        }
    };
    Some(match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(keep(o)?),
        watcher::Event::InitApply(o) => watcher::Event::InitApply(keep(o)?),
        // A deleted object that did not decode was never held.
        watcher::Event::Delete(o) => watcher::Event::Delete(o.0.ok()?),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    })
}

/// Applies one watch event to the shared state: the records first, then the index, whose changes
/// send the reconcile requests, so a reconcile never reads a record older than the change that
/// asked for it.
pub fn observe<K: Watched>(shared: &Shared, event: watcher::Event<K>) {
    match event {
        watcher::Event::Apply(mut o) | watcher::Event::InitApply(mut o) => {
            let rv = o.meta().resource_version.clone();
            let echo = shared.records.apply(&mut o);
            shared.observe_apply(o.into(), echo);
            shared.revisions.observe(K::KIND, rv.as_deref());
        }
        watcher::Event::Delete(o) => {
            let rv = o.meta().resource_version.clone();
            shared.records.delete(
                K::KIND,
                &namespace(&o),
                o.meta().name.as_deref().unwrap_or_default(),
            );
            shared.observe_delete(o.into());
            shared.revisions.observe(K::KIND, rv.as_deref());
        }
        watcher::Event::Init => shared.records.listing(K::KIND),
        // A re-list may have missed deletions: what it did not see is dropped.
        watcher::Event::InitDone => {
            shared.observe_relisted(K::KIND, shared.records.listed(K::KIND));
        }
    }
}

/// Watches one kind in `namespaces` (all when empty) into the shared state. The stream must be
/// polled for the state to move; watch errors are retried with backoff, and a `410 Gone` on resume
/// re-lists.
///
/// One namespace is watched on its own; several are watched cluster-wide and filtered, because the
/// records hold one list per kind, and merged re-lists of several watches would drop each other's
/// objects.
pub fn watch<K: Watched>(
    client: &Client,
    namespaces: &[String],
    shared: Arc<Shared>,
) -> impl Stream<Item = ()> + Send + 'static {
    let api: Api<DeserializeGuard<K>> = match namespaces {
        [one] => Api::namespaced(client.clone(), one),
        _ => Api::all(client.clone()),
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "rolegate".into(),
            instance: None,
        },
    );
    let wanted: BTreeSet<String> = namespaces.iter().cloned().collect();
    let in_scope = move |event: &Result<watcher::Event<DeserializeGuard<K>>, watcher::Error>| {
        let object = match event {
            Ok(
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o),
            ) => Some(o),
            _ => None,
        };
        let keep = wanted.is_empty() || object.is_none_or(|o| wanted.contains(&namespace(o)));
        std::future::ready(keep)
    };
    let sifting = shared.clone();
    watcher(api, watcher::Config::default())
        .default_backoff()
        .filter(in_scope)
        .filter_map(move |event| {
            let event = match event {
                Ok(event) => sift(event, &sifting, Some(&recorder)).map(Ok),
                Err(error) => Some(Err(error)),
            };
            std::future::ready(event)
        })
        .map(move |event| match event {
            Ok(event) => observe(&shared, event),
            Err(error) => {
                tracing::warn!(kind = %K::KIND, %error, "watch failed; retrying with backoff")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Member;
    use serde_json::json;

    fn guard(spec: serde_json::Value) -> DeserializeGuard<Member> {
        serde_json::from_value(json!({
            "apiVersion": API_VERSION,
            "kind": "Member",
            "metadata": {"name": "ann", "namespace": "team"},
            "spec": spec,
        }))
        .expect("the guard decodes any object with metadata")
    }

    #[test]
    fn an_undecodable_object_is_reported_and_left_out() {
        let shared = Shared::new();
        let bad = guard(json!({"account": 7}));
        assert!(sift(watcher::Event::InitApply(bad), &shared, None).is_none());
        let text = shared.metrics.encode();
        assert!(
            text.contains(r#"rolegate_undecodable_objects_total{kind="Member"} 1"#),
            "{text}"
        );
        let good = guard(json!({"account": "acme", "type": "User"}));
        assert!(matches!(
            sift(watcher::Event::InitApply(good), &shared, None),
            Some(watcher::Event::InitApply(_))
        ));
        assert!(matches!(
            sift::<Member>(watcher::Event::InitDone, &shared, None),
            Some(watcher::Event::InitDone)
        ));
    }
}
