//! The state the watches, the controller and the webhook share: the engine's index, the
//! admission overlay, the sync flags, the reconcile triggers and the per-account evaluations.
//! Below the adapters: nothing here talks to the API server.
//!
//! Locks are held only for the change itself: the O(N) parts (building a resync's diff, sending
//! reconcile requests) run outside the index's write lock, so webhook reads never wait on them.
//! Lock order: index, then overlay, then the small maps (versions, evaluations, triggers, the
//! sweep, arrivals).

pub mod kept;
pub mod memo;
pub mod overlay;
pub mod packed;
pub mod revision;
pub mod sweep;
pub mod triggers;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::api::{Kind, Object, ObjectRef as Named};
use crate::engine::{
    self, AccountEvaluation, AccountKey, Decision, Entry, Index, Operation, Review, SchemaRules,
};
use crate::metrics::Metrics;
use kept::{Records, Storable};
use memo::Memo;
use overlay::{Overlay, Settled};
use smol_str::SmolStr;
pub use triggers::{Receivers, Triggers};

/// State shared by the watches, the controller and the webhook.
#[derive(Default)]
pub struct Shared {
    pub index: RwLock<Index>,
    /// What the reconciles read besides the spec: uid, generation and status.
    pub records: Records,
    /// Set while this replica leads: only then are reconcile requests sent.
    triggers: Mutex<Option<Triggers>>,
    synced: [AtomicBool; Kind::ALL.len()],
    synced_changed: tokio::sync::Notify,
    overlay: Mutex<Overlay>,
    /// Each account's content version and the evaluation made of it.
    memo: Mutex<Memo>,
    /// When a watch last saw an object arrive, change or leave in each namespace (the echo of the
    /// controller's own status write aside): while a sync is still streaming in, a missing
    /// reference may yet arrive (see `controller::Context`).
    arrivals: Mutex<HashMap<SmolStr, tokio::time::Instant>>,
    /// Whole accounts waiting to be reconciled (see [`sweep`]).
    pub sweep: sweep::Sweep,
    pub metrics: Arc<Metrics>,
    /// The resourceVersions the watches have delivered (the decision API's freshness).
    pub revisions: revision::Revisions,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Shared state recording into `metrics` (undecodable objects, deleted accounts' conflicts).
    pub fn with_metrics(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            ..Self::default()
        })
    }

    /// Every kind has listed once: the index is complete and admission may judge against it.
    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| s.load(Ordering::Acquire))
    }

    pub fn mark_synced(&self, kind: Kind) {
        self.synced[kind as usize].store(true, Ordering::Release);
        self.synced_changed.notify_waiters();
    }

    /// Waits until every kind has listed once.
    pub async fn until_synced(&self) {
        loop {
            let changed = self.synced_changed.notified();
            if self.synced() {
                return;
            }
            changed.await;
        }
    }

    /// An object as a reconcile reads it: its record and its spec in the index; `None` while
    /// either does not hold it.
    pub fn object<K: Storable>(&self, namespace: &str, name: &str) -> Option<K> {
        let index = self.index.read().ok()?;
        self.records.object(&index, namespace, name)
    }

    /// Replaces the index with a complete snapshot and counts every cache as synced: for
    /// benchmarks and tests that drive the webhook without an API server.
    pub fn load(&self, index: Index) {
        if let Ok(mut slot) = self.index.write() {
            *slot = index;
            if let Ok(mut memo) = self.memo.lock() {
                *memo = Memo::default();
            }
        }
        for kind in Kind::ALL {
            self.mark_synced(kind);
        }
    }

    /// Starts sending reconcile requests for every change. The triggers are installed under the
    /// index's read lock: a change that lands after it finds them installed, and a
    /// [`Shared::reconcile_all`] that follows reads the index after it, so nothing falls between
    /// them and waits for the periodic resync.
    pub fn lead(&self, triggers: Triggers) {
        let Ok(_index) = self.index.read() else {
            return;
        };
        if let Ok(mut slot) = self.triggers.lock() {
            *slot = Some(triggers);
        }
    }

    /// Asks for every object the index holds to be reconciled: when leading starts, and at each
    /// periodic resync (controller-runtime's `SyncPeriod`), instead of a timer kept per object. Sent
    /// account by account through the kinds' gated bulk queues (see [`triggers`]), so an account's
    /// objects are reconciled close together and its one evaluation serves them all. Returns when
    /// the last request is taken, or at once when not leading. No lock is held while waiting.
    pub async fn reconcile_all(&self) {
        let Some(triggers) = self.triggers.lock().ok().and_then(|t| t.clone()) else {
            return;
        };
        let (accounts, roles) = match self.index.read() {
            Ok(index) => (
                index.accounts().collect::<Vec<_>>(),
                index.names(Kind::Role),
            ),
            Err(_) => return,
        };
        for key in accounts {
            let refs = match self.index.read() {
                Ok(index) => account_refs(&index, &key),
                Err(_) => return,
            };
            if !triggers.feed(&refs).await {
                return;
            }
        }
        let roles: Vec<Named> = roles
            .iter()
            .map(|(ns, name)| Named::new(Kind::Role, ns.as_str(), name.as_str()))
            .collect();
        triggers.feed(&roles).await;
    }

    /// Reconciles the accounts waiting in [`Shared::sweep`] while this replica leads: those a
    /// change to many accounts marked, after `delay` (so that the changes arriving with it join
    /// the same pass), and those held back, once their namespace has been quiet for `grace`.
    /// Each account's objects go through the kinds' gated bulk queues, as the resync's do, so at
    /// most a window of requests per kind is alive at once, whatever the number of accounts.
    /// Returns once the controller has stopped, or at once when not leading.
    pub async fn sweep_accounts(&self, delay: Duration, grace: Duration) {
        let Some(triggers) = self.triggers.lock().ok().and_then(|t| t.clone()) else {
            return;
        };
        loop {
            let wake = self.sweep.wake.notified();
            let next = self
                .sweep
                .release(tokio::time::Instant::now(), |ns| self.quiet_at(ns, grace));
            if self.sweep.is_due() {
                tokio::time::sleep(delay).await;
                while let Some(key) = self.sweep.take() {
                    let refs = match self.index.read() {
                        Ok(index) => account_refs(&index, &key),
                        Err(_) => return,
                    };
                    if !triggers.feed(&refs).await {
                        return;
                    }
                }
                continue;
            }
            match next {
                Some(at) => tokio::select! {
                    () = wake => {}
                    () = tokio::time::sleep_until(at) => {}
                },
                None => wake.await,
            }
        }
    }

    /// Whether this replica leads (reconcile requests are sent).
    fn leading(&self) -> bool {
        self.triggers.lock().is_ok_and(|t| t.is_some())
    }

    /// The requests a change asks for, built under the index's lock: every object of its accounts
    /// and its roles; when it touches several accounts, its accounts go to the sweep instead and
    /// only its roles are asked for here. Nothing when not leading.
    fn requests(&self, touched: &Touched, index: &Index) -> Vec<Named> {
        if !self.leading() {
            return Vec::new();
        }
        if touched.accounts.len() > 1 {
            self.sweep.mark(touched.accounts.iter().cloned());
            return touched.role_refs();
        }
        touched.refs(index)
    }

    /// Sends requests if this replica leads; called with no lock held.
    fn send(&self, refs: &[Named]) {
        if refs.is_empty() {
            return;
        }
        let triggers = self.triggers.lock().ok().and_then(|t| t.clone());
        if let Some(triggers) = triggers {
            triggers.send(refs);
        }
    }

    /// Marks accounts changed: their memoised evaluations are stale. Called under the index's
    /// write lock, so a reader holding the read lock sees versions that match the index.
    fn changed(&self, accounts: &BTreeSet<AccountKey>) {
        if let Ok(mut memo) = self.memo.lock() {
            for key in accounts {
                memo.bump(key);
            }
        }
    }

    /// The evaluation of an account's current content at `now`, made at most once per change and
    /// per window boundary (R18); the bool says whether this call made it. Every object of the
    /// account derives its status from it.
    pub fn evaluation(
        &self,
        key: &AccountKey,
        now: engine::Timestamp,
    ) -> Option<(Arc<AccountEvaluation>, bool)> {
        let index = self.index.read().ok()?;
        let cell = self.memo.lock().ok()?.cell(key, now);
        // Evaluated under the read lock: no change lands in between, so the version holds.
        // Concurrent reconciles of the same account wait for this one instead of evaluating too.
        let mut made = false;
        let eval = cell
            .get_or_init(|| {
                made = true;
                Arc::new(engine::evaluate_account(&index, key, now))
            })
            .clone();
        Some((eval, made))
    }

    /// Runs `f` on the index and the evaluation of `key`'s current content at `now` (made at most
    /// once per change, as [`Shared::evaluation`]), under one read lock: what `f` reads of the
    /// index is what was evaluated. The decision API answers this way.
    pub fn with_evaluation<R>(
        &self,
        key: &AccountKey,
        now: engine::Timestamp,
        f: impl FnOnce(&Index, &AccountEvaluation) -> R,
    ) -> Option<R> {
        let index = self.index.read().ok()?;
        let cell = self.memo.lock().ok()?.cell(key, now);
        let eval = cell.get_or_init(|| Arc::new(engine::evaluate_account(&index, key, now)));
        Some(f(&index, eval))
    }

    /// Runs `warm` on the index and the account's evaluation when one of its current content is
    /// at hand, else `cold` on the index alone, under one read lock; never evaluates the account
    /// or fills the memo (a check spread over every account must not push out the evaluations
    /// the controller is working with).
    pub fn with_evaluation_if_made<R>(
        &self,
        key: &AccountKey,
        now: engine::Timestamp,
        warm: impl FnOnce(&Index, &AccountEvaluation) -> R,
        cold: impl FnOnce(&Index) -> R,
    ) -> Option<R> {
        let index = self.index.read().ok()?;
        let made = self.memo.lock().ok()?.peek(key, now);
        Some(match made {
            Some(eval) => warm(&index, &eval),
            None => cold(&index),
        })
    }

    /// Judges an admission request and, when it is allowed and real (not a dry run), lays the new
    /// object over the index at once, under the same lock, so the next request sees it. The
    /// request came through the API server, which has run the CRDs' CEL rules already.
    pub fn admit(
        &self,
        review: &Review<'_>,
        dry_run: bool,
        now: engine::Timestamp,
    ) -> Option<Decision> {
        // Most requests change nothing here (denials, dry runs, deletes): judge them under a read
        // lock, in parallel. Only an admission that lays an object over the index takes the write
        // lock, and judges again under it, since the index may have moved in between.
        let lays_over =
            !dry_run && review.operation != Operation::Delete && review.object.is_some();
        let decision = engine::admit_with(
            &*self.index.read().ok()?,
            review,
            now,
            SchemaRules::Enforced,
        );
        if !lays_over || !decision.is_allowed() {
            return Some(decision);
        }
        let mut index = self.index.write().ok()?;
        let decision = engine::admit_with(&index, review, now, SchemaRules::Enforced);
        if let Some(object) = review.object.filter(|_| decision.is_allowed()) {
            let key = object.object_ref();
            let entry = Entry::from(object);
            if let Ok(mut overlay) = self.overlay.lock() {
                let watched = index
                    .namespace(&key.namespace)
                    .and_then(|ns| indexed(ns, &key));
                overlay.admit(key.clone(), entry.clone(), watched, Instant::now());
            }
            let touched = index.apply_entry(&key.namespace, entry);
            self.changed(&touched);
        }
        Some(decision)
    }

    /// Drops overlay objects whose watch event never came (another webhook denied them, say),
    /// restoring what the watch last said of them.
    pub fn expire_overlay(&self) {
        self.expire_overlay_after(overlay::TTL);
    }

    fn expire_overlay_after(&self, ttl: Duration) {
        let now = Instant::now();
        // Cheap check first, without the index's write lock.
        if self
            .overlay
            .lock()
            .map_or(true, |o| !o.has_expired(ttl, now))
        {
            return;
        }
        let refs = {
            let Ok(mut index) = self.index.write() else {
                return;
            };
            let Ok(mut overlay) = self.overlay.lock() else {
                return;
            };
            let mut touched = Touched::default();
            for (key, watched) in overlay.expire(ttl, now) {
                let changed = match watched {
                    Some(watched) => index.apply_entry(&key.namespace, watched),
                    None => index.delete(key.kind, &key.namespace, &key.name),
                };
                touched.accounts.extend(changed);
            }
            drop(overlay);
            self.changed(&touched.accounts);
            self.requests(&touched, &index)
        };
        self.send(&refs);
    }

    /// When `namespace` will have been quiet for `grace` (no object arriving, changing or
    /// leaving), if anything arrived there since the start: until then a finding that may heal is
    /// held back (see `controller::Context`), and the sweep releases its accounts then.
    pub fn quiet_at(&self, namespace: &str, grace: Duration) -> Option<tokio::time::Instant> {
        let last = self.arrivals.lock().ok()?.get(namespace).copied()?;
        Some(last + grace)
    }

    fn arrived(&self, namespace: &str) {
        if let Ok(mut arrivals) = self.arrivals.lock() {
            let now = tokio::time::Instant::now();
            match arrivals.get_mut(namespace) {
                Some(at) => *at = now,
                None => {
                    arrivals.insert(namespace.into(), now);
                }
            }
        }
    }

    /// A watch saw `object` created or changed. A change the rules cannot see (status, labels)
    /// reconciles only the object itself: the controller's own status writes must not set off
    /// its whole account again, and the `echo` of one (the status it wrote, see
    /// [`Records::wrote`]) reconciles nothing.
    pub fn observe_apply(&self, object: Object, echo: bool) {
        let (key, entry) = (object.object_ref(), Entry::from(object));
        if !echo {
            self.arrived(&key.namespace);
        }
        let refs = {
            let Ok(mut index) = self.index.write() else {
                return;
            };
            let settled = self
                .overlay
                .lock()
                .map_or(Settled::NotAdmitted, |mut o| o.settle(&key, Some(&entry)));
            let unchanged = match settled {
                Settled::InFlight => true,
                Settled::Landed => false,
                Settled::NotAdmitted => index
                    .namespace(&key.namespace)
                    .and_then(|ns| indexed(ns, &key))
                    .is_some_and(|held| held == entry),
            };
            if unchanged {
                if echo { Vec::new() } else { vec![key] }
            } else {
                let mut touched = Touched::default();
                touched.note(&index, &key.namespace, &entry);
                let changed = index.apply_entry(&key.namespace, entry.clone());
                touched.note(&index, &key.namespace, &entry);
                self.changed(&changed);
                touched.accounts.extend(changed);
                self.requests(&touched, &index)
            }
        };
        self.send(&refs);
    }

    /// A watch saw `object` deleted.
    pub fn observe_delete(&self, object: Object) {
        let (key, entry) = (object.object_ref(), Entry::from(object));
        let refs = {
            let Ok(mut index) = self.index.write() else {
                return;
            };
            if let Ok(mut overlay) = self.overlay.lock() {
                overlay.settle(&key, None);
            }
            self.arrived(&key.namespace);
            let mut touched = Touched::default();
            touched.note(&index, &key.namespace, &entry);
            let changed = index.delete(key.kind, &key.namespace, &key.name);
            self.deleted(&key);
            self.changed(&changed);
            touched.accounts.extend(changed);
            self.requests(&touched, &index)
        };
        self.send(&refs);
    }

    /// A deleted Account is reconciled no more: its conflicts leave the gauge now.
    fn deleted(&self, key: &Named) {
        if key.kind == Kind::Account {
            self.metrics
                .forget_account(&AccountKey::new(&key.namespace, &key.name));
        }
    }

    /// A (re-)list of `kind` completed without the (namespace, name) pairs in `gone` (deletions a
    /// dropped watch missed, see [`Records::listed`]): drops them and marks the kind synced.
    pub fn observe_relisted(&self, kind: Kind, gone: Vec<(String, String)>) {
        let refs = if gone.is_empty() {
            Vec::new()
        } else {
            let Ok(mut index) = self.index.write() else {
                return;
            };
            let overlay = self.overlay.lock().ok();
            let mut touched = Touched::default();
            for (ns, name) in gone {
                let key = Named::new(kind, ns.as_str(), name.as_str());
                // Admitted here and not yet watched: the overlay decides, not the list.
                if overlay.as_ref().is_some_and(|o| o.holds(&key)) {
                    continue;
                }
                let Some(entry) = index.namespace(&ns).and_then(|n| indexed(n, &key)) else {
                    continue;
                };
                touched.note(&index, &ns, &entry);
                let changed = index.delete(kind, &ns, &name);
                self.deleted(&key);
                self.changed(&changed);
                touched.accounts.extend(changed);
            }
            drop(overlay);
            self.requests(&touched, &index)
        };
        self.mark_synced(kind);
        self.send(&refs);
    }

    #[cfg(test)]
    fn overlay_len(&self) -> usize {
        self.overlay.lock().map_or(0, |o| o.len())
    }
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

/// What one change asks the controller to reconcile.
#[derive(Default)]
struct Touched {
    accounts: BTreeSet<AccountKey>,
    roles: BTreeSet<(String, String)>,
}

impl Touched {
    /// Roles whose status a change to `entry` moves: a binding moves its role's bound count, a
    /// role moves itself and the roles that include it.
    fn note(&mut self, index: &Index, ns: &str, entry: &Entry) {
        match entry {
            Entry::RoleBinding(b) => {
                self.roles.insert((ns.to_owned(), b.spec.role.to_string()));
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

    /// The objects to reconcile: every object of each touched account (its teams included), and the
    /// touched roles.
    fn refs(&self, index: &Index) -> Vec<Named> {
        let mut out: Vec<Named> = self
            .accounts
            .iter()
            .flat_map(|key| account_refs(index, key))
            .collect();
        out.extend(self.role_refs());
        out
    }

    fn role_refs(&self) -> Vec<Named> {
        self.roles
            .iter()
            .map(|(ns, role)| Named::new(Kind::Role, ns.as_str(), role.as_str()))
            .collect()
    }
}

/// Every object of an account: itself, its members, its bindings and its teams (a team's resolved
/// members and bindings move with any object of its account).
fn account_refs(index: &Index, key: &AccountKey) -> Vec<Named> {
    let ns = key.namespace.as_str();
    let (members, bindings) = index.account_objects(key);
    let teams = index.account_teams(key);
    let mut out = Vec::with_capacity(1 + members.len() + bindings.len() + teams.len());
    out.push(Named::new(Kind::Account, ns, key.account.as_str()));
    out.extend(members.into_iter().map(|m| Named::new(Kind::Member, ns, m)));
    out.extend(
        bindings
            .into_iter()
            .map(|b| Named::new(Kind::RoleBinding, ns, b)),
    );
    out.extend(teams.into_iter().map(|t| Named::new(Kind::Team, ns, t)));
    out
}

#[cfg(test)]
mod tests;
