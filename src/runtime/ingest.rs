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
    synced: [AtomicBool; Kind::ALL.len()],
    /// Objects this replica admitted that the watch has not delivered yet: two conflicting
    /// requests milliseconds apart must not both pass.
    overlay: Mutex<HashMap<Named, Admitted>>,
}

/// An admitted object laid over the index until its watch event arrives.
struct Admitted {
    at: Instant,
    entry: Entry,
    /// What the watch last said of the object (None: absent), restored if the admitted version
    /// never arrives (a later webhook denied it, say).
    watched: Option<Entry>,
}

/// What an overlay makes of one watch event.
enum Settled {
    /// This replica admitted nothing for the object: the event goes to the index.
    NotAdmitted,
    /// The admitted version arrived: the index takes it, with the server's metadata.
    Landed,
    /// An older version (a status write, say): the admitted one stays over it until it lands.
    InFlight,
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
            let entry = Entry::from(object);
            if let Ok(mut overlay) = self.overlay.lock() {
                // A second admission before the first landed keeps what the watch last said.
                let watched = match overlay.remove(&key) {
                    Some(earlier) => earlier.watched,
                    None => index
                        .namespace(&key.namespace)
                        .and_then(|ns| indexed(ns, &key)),
                };
                overlay.insert(
                    key.clone(),
                    Admitted {
                        at: Instant::now(),
                        entry: entry.clone(),
                        watched,
                    },
                );
            }
            index.apply_entry(&key.namespace, entry);
        }
        Some(decision)
    }

    /// Drops overlay objects whose watch event never came (another webhook denied them, say),
    /// restoring what the watch last said of them.
    pub fn expire_overlay(&self) {
        self.expire_overlay_after(OVERLAY_TTL);
    }

    fn expire_overlay_after(&self, ttl: Duration) {
        let expired = |overlay: &HashMap<Named, Admitted>| -> Vec<Named> {
            overlay
                .iter()
                .filter(|(_, admitted)| admitted.at.elapsed() > ttl)
                .map(|(k, _)| k.clone())
                .collect()
        };
        // Cheap check first, without the index's write lock.
        if self.overlay.lock().map_or(true, |o| expired(&o).is_empty()) {
            return;
        }
        // The index, then the overlay: the order `admit` and `observe` take them in.
        let Ok(mut index) = self.index.write() else {
            return;
        };
        let Ok(mut overlay) = self.overlay.lock() else {
            return;
        };
        for key in expired(&overlay) {
            match overlay.remove(&key).and_then(|admitted| admitted.watched) {
                Some(watched) => {
                    index.apply_entry(&key.namespace, watched);
                }
                None => {
                    index.delete(key.kind, &key.namespace, &key.name);
                }
            }
        }
    }

    /// Matches a watch event against the overlay; `Some` entry is the object, `None` a deletion.
    fn settle(&self, key: &Named, entry: Option<&Entry>) -> Settled {
        let Ok(mut overlay) = self.overlay.lock() else {
            return Settled::NotAdmitted;
        };
        let Some(admitted) = overlay.get_mut(key) else {
            return Settled::NotAdmitted;
        };
        match entry {
            Some(entry) if !admitted.entry.same_spec(entry) => {
                admitted.watched = Some(entry.clone());
                Settled::InFlight
            }
            _ => {
                overlay.remove(key);
                Settled::Landed
            }
        }
    }

    /// Applies one watch event to the index and asks for the reconciles it makes necessary. A
    /// change the rules cannot see (status, labels) reconciles only the object itself: the
    /// controller's own status writes must not set off its whole account again.
    fn observe<K: Watched>(&self, event: &watcher::Event<K>, store: &Store<K>) {
        let Ok(mut index) = self.index.write() else {
            return;
        };
        let mut touched = Touched::default();
        match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                let (key, entry) = entry_of(o);
                let unchanged = match self.settle(&key, Some(&entry)) {
                    Settled::InFlight => true,
                    Settled::Landed => false,
                    Settled::NotAdmitted => index
                        .namespace(&key.namespace)
                        .and_then(|ns| indexed(ns, &key))
                        .is_some_and(|held| held == entry),
                };
                if unchanged {
                    touched.own = Some(key);
                } else {
                    touched.note(&index, &key.namespace, &entry);
                    touched
                        .accounts
                        .extend(index.apply_entry(&key.namespace, entry.clone()));
                    touched.note(&index, &key.namespace, &entry);
                }
            }
            watcher::Event::Delete(o) => {
                let (key, entry) = entry_of(o);
                self.settle(&key, None);
                touched.note(&index, &key.namespace, &entry);
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

/// A watched object's name and what the index keeps of it.
fn entry_of<K: Watched>(o: &K) -> (Named, Entry) {
    let object: Object = o.clone().into();
    (object.object_ref(), object.into())
}

fn indexed(ns: &crate::engine::Namespace, key: &Named) -> Option<Entry> {
    let name = key.name.as_str();
    match key.kind {
        Kind::Account => ns.account(name).cloned().map(Entry::Account),
        Kind::Member => ns.member(name).cloned().map(Entry::Member),
        Kind::Team => ns.team(name).cloned().map(Entry::Team),
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
    /// The changed object alone, when nothing the rules read changed.
    own: Option<Named>,
}

impl Touched {
    /// Roles whose status a change to `entry` moves: a binding moves its role's bound count, a
    /// role moves itself and the roles that include it.
    fn note(&mut self, index: &Index, ns: &str, entry: &Entry) {
        match entry {
            Entry::RoleBinding(b) => {
                self.roles.insert((ns.to_owned(), b.spec.role.clone()));
            }
            Entry::Role(_) => {
                for role in index.roles_including(ns, entry.name()) {
                    self.roles.insert((ns.to_owned(), role));
                }
                self.roles.insert((ns.to_owned(), entry.name().to_owned()));
            }
            _ => {}
        }
    }

    fn send(&self, index: &Index, t: &Triggers) {
        for key in &self.accounts {
            let ns = key.namespace.as_str();
            request(&t.accounts, ns, &key.account);
            let (members, bindings) = index.account_objects(key);
            for m in members {
                request(&t.members, ns, &m);
            }
            for b in bindings {
                request(&t.bindings, ns, &b);
            }
        }
        for (ns, role) in &self.roles {
            request(&t.roles, ns, role);
        }
        if let Some(Named {
            kind,
            namespace: ns,
            name,
        }) = &self.own
        {
            match kind {
                Kind::Account => request(&t.accounts, ns, name),
                Kind::Member => request(&t.members, ns, name),
                // No Team reconciler yet: a team change reaches its members via `accounts`.
                Kind::Team => {}
                Kind::Role => request(&t.roles, ns, name),
                Kind::RoleBinding => request(&t.bindings, ns, name),
            }
        }
    }
}

/// Asks one kind's controller to reconcile one object. A closed channel means the controller has
/// stopped, and then there is nothing to ask.
fn request<K: Resource<DynamicType = ()>>(
    to: &UnboundedSender<ObjectRef<K>>,
    namespace: &str,
    name: &str,
) {
    let _stopped = to.unbounded_send(ObjectRef::new(name).within(namespace));
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc::{self, UnboundedReceiver};
    use serde_json::json;

    struct Received {
        accounts: UnboundedReceiver<ObjectRef<Account>>,
        members: UnboundedReceiver<ObjectRef<Member>>,
        roles: UnboundedReceiver<ObjectRef<Role>>,
        bindings: UnboundedReceiver<ObjectRef<RoleBinding>>,
    }

    /// Names waiting on a channel, in order, emptying it.
    fn drain<K: Resource<DynamicType = ()>>(
        rx: &mut UnboundedReceiver<ObjectRef<K>>,
    ) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|r| r.name)
            .collect()
    }

    impl Received {
        fn drain(&mut self) -> [Vec<String>; 4] {
            [
                drain(&mut self.accounts),
                drain(&mut self.members),
                drain(&mut self.roles),
                drain(&mut self.bindings),
            ]
        }
    }

    fn leading() -> (Arc<Shared>, Received) {
        let shared = Shared::new();
        let (accounts, a) = mpsc::unbounded();
        let (members, m) = mpsc::unbounded();
        let (roles, r) = mpsc::unbounded();
        let (bindings, b) = mpsc::unbounded();
        shared.lead(Triggers {
            accounts,
            members,
            roles,
            bindings,
        });
        let received = Received {
            accounts: a,
            members: m,
            roles: r,
            bindings: b,
        };
        (shared, received)
    }

    fn object<K: DeserializeOwned>(kind: &str, name: &str, spec: serde_json::Value) -> K {
        serde_json::from_value(json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": kind,
            "metadata": {"name": name, "namespace": "team", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec,
        }))
        .expect("a valid test object")
    }

    fn account() -> Account {
        object("Account", "acme", json!({"projects": [{"name": "web"}]}))
    }

    fn member(name: &str, display: &str) -> Member {
        object(
            "Member",
            name,
            json!({"account": "acme", "type": "User", "displayName": display}),
        )
    }

    fn role() -> Role {
        object(
            "Role",
            "viewer",
            json!({"scope": "Account", "permissions": ["billing.read"]}),
        )
    }

    fn binding(name: &str, member: &str) -> RoleBinding {
        object(
            "RoleBinding",
            name,
            json!({"account": "acme", "member": member, "role": "viewer"}),
        )
    }

    fn apply<K: Watched>(shared: &Shared, o: K) {
        let (store, _writer) = reflector::store::<K>();
        shared.observe(&watcher::Event::Apply(o), &store);
    }

    fn admit_update(shared: &Shared, old: Object, new: Object) -> bool {
        let review = Review {
            operation: Operation::Update,
            object: Some(&new),
            old_object: Some(&old),
            requester: None,
        };
        shared.admit(&review, false).is_some_and(|d| d.is_allowed())
    }

    fn display_name(shared: &Shared, name: &str) -> Option<String> {
        let index = shared.index.read().expect("lock");
        let member = index.namespace("team")?.member(name)?;
        member.spec.display_name.clone()
    }

    fn loaded() -> (Arc<Shared>, Received) {
        let (shared, mut received) = leading();
        apply(&shared, account());
        apply(&shared, role());
        apply(&shared, member("ann", "Ann"));
        apply(&shared, binding("ann-viewer", "ann"));
        received.drain();
        (shared, received)
    }

    #[test]
    fn a_status_change_reconciles_only_its_own_object() {
        let (shared, mut received) = loaded();
        let mut written = binding("ann-viewer", "ann");
        written.status = Some(crate::api::RoleBindingStatus {
            observed_generation: Some(1),
            ..Default::default()
        });
        apply(&shared, written);
        let nothing: Vec<String> = Vec::new();
        assert_eq!(
            received.drain(),
            [
                nothing.clone(),
                nothing.clone(),
                nothing,
                vec!["ann-viewer".to_owned()]
            ]
        );
    }

    #[test]
    fn a_spec_change_reconciles_the_account_and_the_role() {
        let (shared, mut received) = loaded();
        apply(&shared, binding("bob-viewer", "ann"));
        let [accounts, members, roles, bindings] = received.drain();
        assert_eq!(accounts, ["acme"]);
        assert_eq!(members, ["ann"]);
        assert!(roles.contains(&"viewer".to_owned()), "{roles:?}");
        assert_eq!(bindings, ["ann-viewer", "bob-viewer"]);
    }

    #[test]
    fn an_admitted_object_stays_over_older_events_and_its_arrival_reconciles() {
        let (shared, mut received) = loaded();
        let (old, new) = (member("ann", "Ann"), member("ann", "Ann Lee"));
        assert!(admit_update(
            &shared,
            old.clone().into(),
            new.clone().into()
        ));
        assert_eq!(display_name(&shared, "ann").as_deref(), Some("Ann Lee"));
        assert_eq!(
            received.drain().concat(),
            Vec::<String>::new(),
            "admission alone reconciles nothing"
        );

        // A status write of the old version arrives first: the admitted spec stays.
        apply(&shared, old);
        assert_eq!(display_name(&shared, "ann").as_deref(), Some("Ann Lee"));
        assert_eq!(received.drain()[1], ["ann"]);

        // The admitted version lands: the index already held it, yet it is a change to reconcile.
        apply(&shared, new);
        let [accounts, members, ..] = received.drain();
        assert_eq!(
            (accounts, members),
            (vec!["acme".to_owned()], vec!["ann".to_owned()])
        );
        assert!(shared.overlay.lock().expect("lock").is_empty());
    }

    #[test]
    fn an_admitted_object_that_never_lands_gives_way_to_what_the_watch_last_said() {
        let (shared, _received) = loaded();
        assert!(admit_update(
            &shared,
            member("ann", "Ann").into(),
            member("ann", "Ann Lee").into()
        ));
        // Someone else's update lands instead of the admitted one.
        apply(&shared, member("ann", "Annie"));
        assert_eq!(display_name(&shared, "ann").as_deref(), Some("Ann Lee"));
        shared.expire_overlay_after(Duration::ZERO);
        assert_eq!(display_name(&shared, "ann").as_deref(), Some("Annie"));
        assert!(shared.overlay.lock().expect("lock").is_empty());
    }
}
