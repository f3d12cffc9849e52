//! Reflectors feed the engine's index: one watch per kind (and per namespace when limited), shared
//! by the controller and the webhook. Each change tells the controller which objects to reconcile:
//! only the changed object's account, and the roles whose status moves.

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedSender;
use futures::{Stream, StreamExt};
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::{Account, Kind, KindOf, Member, Object, ObjectRef as Named, Role, RoleBinding};
use crate::engine::{self, AccountKey, Decision, Entry, Index, Operation, Review};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How long an admitted object stays in the overlay waiting for its watch event.
const OVERLAY_TTL: Duration = Duration::from_secs(30);

/// Where the controller's reconcile requests go, one channel per kind.
#[derive(Clone)]
pub struct Triggers {
    pub accounts: UnboundedSender<ObjectRef<Account>>,
    pub members: UnboundedSender<ObjectRef<Member>>,
    pub roles: UnboundedSender<ObjectRef<Role>>,
    pub bindings: UnboundedSender<ObjectRef<RoleBinding>>,
}

/// State shared by the reflectors, the controller and the webhook.
#[derive(Default)]
pub struct Shared {
    pub index: RwLock<Index>,
    /// Set while this replica leads: only then are reconcile requests sent.
    triggers: Mutex<Option<Triggers>>,
    synced: [AtomicBool; 4],
    /// Objects this replica admitted that the watch has not delivered yet, with what the index
    /// held before: two conflicting requests milliseconds apart must not both pass.
    overlay: Mutex<HashMap<Named, (Instant, Option<Entry>)>>,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every kind has listed once: the index is complete and admission may judge against it.
    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| s.load(Ordering::Acquire))
    }

    fn mark_synced(&self, kind: Kind) {
        self.synced[kind as usize].store(true, Ordering::Release);
    }

    /// Replaces the index with a complete snapshot and counts every cache as synced: for
    /// benchmarks and tests that drive the webhook without an API server.
    pub fn load(&self, index: Index) {
        if let Ok(mut slot) = self.index.write() {
            *slot = index;
        }
        for kind in Kind::ALL {
            self.mark_synced(kind);
        }
    }

    /// Starts sending reconcile requests, beginning with every object the index holds.
    pub fn lead(&self, triggers: Triggers) {
        let mut all = Touched::default();
        if let Ok(index) = self.index.read() {
            all.accounts.extend(index.accounts());
            all.roles.extend(index.names(Kind::Role));
            all.send(&index, &triggers);
        }
        if let Ok(mut slot) = self.triggers.lock() {
            *slot = Some(triggers);
        }
    }

    /// Judges an admission request and, when it is allowed and real (not a dry run), lays the new
    /// object over the index at once, under the same lock, so the next request sees it.
    pub fn admit(&self, review: &Review<'_>, dry_run: bool) -> Option<Decision> {
        // Most requests change nothing here (denials, dry runs, deletes): judge them under a read
        // lock, in parallel. Only an admission that lays an object over the index takes the write
        // lock, and judges again under it, since the index may have moved in between.
        let lays_over =
            !dry_run && review.operation != Operation::Delete && review.object.is_some();
        let decision = engine::admit(&*self.index.read().ok()?, review);
        if !lays_over || !decision.is_allowed() {
            return Some(decision);
        }
        let mut index = self.index.write().ok()?;
        let decision = engine::admit(&index, review);
        if let Some(object) = review.object.filter(|_| decision.is_allowed()) {
            let key = object.object_ref();
            let previous = index
                .namespace(&key.namespace)
                .and_then(|ns| indexed(ns, &key));
            if let Ok(mut overlay) = self.overlay.lock() {
                overlay.entry(key).or_insert((Instant::now(), previous)).0 = Instant::now();
            }
            index.apply(object.clone());
        }
        Some(decision)
    }

    /// Drops overlay objects whose watch event never came (another webhook denied them, say),
    /// restoring what the index held before.
    pub fn expire_overlay(&self) {
        let Ok(mut overlay) = self.overlay.lock() else {
            return;
        };
        let expired: Vec<Named> = overlay
            .iter()
            .filter(|(_, (at, _))| at.elapsed() > OVERLAY_TTL)
            .map(|(k, _)| k.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        let Ok(mut index) = self.index.write() else {
            return;
        };
        for key in expired {
            match overlay.remove(&key).and_then(|(_, previous)| previous) {
                Some(previous) => {
                    index.apply_entry(&key.namespace, previous);
                }
                None => {
                    index.delete(key.kind, &key.namespace, &key.name);
                }
            }
        }
    }

    /// Applies one watch event to the index and asks for the reconciles it makes necessary.
    fn observe<K: Watched>(&self, event: &watcher::Event<K>, store: &Store<K>) {
        let Ok(mut index) = self.index.write() else {
            return;
        };
        let mut touched = Touched::default();
        match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                touched.note(&index, o);
                touched.accounts.extend(index.apply(o.clone().into()));
                touched.note(&index, o);
            }
            watcher::Event::Delete(o) => {
                touched.note(&index, o);
                touched
                    .accounts
                    .extend(index.delete(K::KIND, &namespace(o), &o.name_any()));
            }
            watcher::Event::Init => {}
            watcher::Event::InitDone => {
                // A re-list may have missed deletions: drop what the store no longer has.
                let present: BTreeSet<(String, String)> = store
                    .state()
                    .iter()
                    .map(|o| (namespace(&**o), o.name_any()))
                    .collect();
                for (ns, name) in index
                    .names(K::KIND)
                    .into_iter()
                    .filter(|k| !present.contains(k))
                {
                    touched.accounts.extend(index.delete(K::KIND, &ns, &name));
                }
                self.mark_synced(K::KIND);
            }
        }
        if let Ok(Some(triggers)) = self.triggers.lock().as_deref() {
            touched.send(&index, triggers);
        }
    }
}

fn indexed(ns: &crate::engine::Namespace, key: &Named) -> Option<Entry> {
    let name = key.name.as_str();
    match key.kind {
        Kind::Account => ns.account(name).cloned().map(Entry::Account),
        Kind::Member => ns.member(name).cloned().map(Entry::Member),
        Kind::Role => ns.role(name).cloned().map(Entry::Role),
        Kind::RoleBinding => ns.binding(name).cloned().map(Entry::RoleBinding),
    }
}

fn namespace<K: Resource>(o: &K) -> String {
    crate::api::namespace_of(o.meta())
}

/// What one change asks the controller to reconcile.
#[derive(Default)]
struct Touched {
    accounts: BTreeSet<AccountKey>,
    roles: BTreeSet<(String, String)>,
}

impl Touched {
    /// Roles whose status a change to `o` moves: a binding moves its role's bound count, a role
    /// moves itself and the roles that include it.
    fn note<K: Watched>(&mut self, index: &Index, o: &K) {
        let ns = namespace(o);
        let object: Object = o.clone().into();
        match &object {
            Object::RoleBinding(b) => {
                self.roles.insert((ns, b.spec.role.clone()));
            }
            Object::Role(_) => {
                for role in index.roles_including(&ns, &o.name_any()) {
                    self.roles.insert((ns.clone(), role));
                }
                self.roles.insert((ns, o.name_any()));
            }
            _ => {}
        }
    }

    fn send(&self, index: &Index, t: &Triggers) {
        for key in &self.accounts {
            let ns = key.namespace.as_str();
            let _ = t
                .accounts
                .unbounded_send(ObjectRef::new(&key.account).within(ns));
            let (members, bindings) = index.account_objects(key);
            for m in members {
                let _ = t.members.unbounded_send(ObjectRef::new(&m).within(ns));
            }
            for b in bindings {
                let _ = t.bindings.unbounded_send(ObjectRef::new(&b).within(ns));
            }
        }
        for (ns, role) in &self.roles {
            let _ = t.roles.unbounded_send(ObjectRef::new(role).within(ns));
        }
    }
}

/// What a watched kind must be.
pub trait Watched:
    KindOf
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
        + Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// Watches one kind in `namespaces` (all when empty) into a store and the shared index. The stream
/// must be polled for the store and index to move; watch errors are retried with backoff.
///
/// One namespace is watched on its own; several are watched cluster-wide and filtered, because a
/// reflector store holds one list, and merged re-lists of several watches would drop each other's
/// objects.
pub fn watch<K: Watched>(
    client: &Client,
    namespaces: &[String],
    shared: Arc<Shared>,
) -> (Store<K>, impl Stream<Item = ()> + Send + 'static) {
    let (reader, writer) = reflector::store::<K>();
    let api: Api<K> = match namespaces {
        [one] => Api::namespaced(client.clone(), one),
        _ => Api::all(client.clone()),
    };
    let wanted: BTreeSet<String> = namespaces.iter().cloned().collect();
    let in_scope = move |event: &Result<watcher::Event<K>, watcher::Error>| {
        let object = match event {
            Ok(
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o),
            ) => Some(o),
            _ => None,
        };
        let keep = wanted.is_empty() || object.is_none_or(|o| wanted.contains(&namespace(o)));
        std::future::ready(keep)
    };
    let store = reader.clone();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .filter(in_scope)
        // The store keeps every object of the cluster; managed fields and kubectl's
        // last-applied-configuration are often most of an object, and nothing here reads them.
        .modify(|o| {
            o.managed_fields_mut().clear();
            o.annotations_mut().remove(LAST_APPLIED);
        })
        .reflect(writer)
        .map(move |event| match event {
            Ok(event) => shared.observe(&event, &store),
            Err(error) => {
                tracing::warn!(kind = %K::KIND, %error, "watch failed; retrying with backoff")
            }
        });
    (reader, stream)
}
