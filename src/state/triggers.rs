//! Reconcile requests from the ingest to the controller: one bounded channel per kind. A request
//! that finds its channel full is not dropped: it waits in a per-kind set (deduplicated, so bounded
//! by the number of objects) that the receiver drains once the channel is empty, and the overflow is
//! counted in `rolegate_trigger_overflows`.
//!
//! Bulk requests (every object, when leading starts and at each resync) take a second, gated path:
//! the reconcile loop takes every request it is offered at once, so a pass over 160,000 objects
//! would otherwise wait inside it, and the kinds would drift apart (the accounts done long before
//! their bindings), so that each account's evaluation would have to be kept until
//! its last object came. A kind lets in at most [`BULK_WINDOW`] bulk requests beyond the reconciles
//! it has finished, and the sender waits for room, account by account: the kinds move through the
//! accounts together. Change-driven requests never wait behind bulk ones.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use prometheus_client::metrics::counter::Counter;
use smol_str::SmolStr;
use tokio::sync::mpsc;

use crate::api::{Account, Kind, Member, ObjectRef as Named, Role, RoleBinding, Team};
use crate::metrics::{KindLabels, Metrics};

/// Requests buffered per kind before they spill into the overflow set.
pub const CAPACITY: usize = 4096;

/// Bulk requests a kind lets into its controller beyond the reconciles it has finished: enough to
/// keep `--concurrency` reconciles busy, few enough that the kinds stay together.
pub const BULK_WINDOW: usize = 64;

/// A kind's bulk requests let in and not yet reconciled, by (namespace, name): a reconcile of the
/// object ends its place, whatever asked for it (kube merges a bulk request with a change-driven
/// one for the same object into one reconcile), and later reconciles of it (the watch event of its
/// own status write, say) do not free another object's place.
#[derive(Default)]
pub struct Gate {
    in_flight: Mutex<HashSet<(String, String)>>,
    waker: AtomicWaker,
}

impl Gate {
    /// A reconcile of `name` ended, or its request was dropped (the object is gone): if a bulk
    /// request let it in, the next may go.
    pub fn done(&self, namespace: Option<&str>, name: &str) {
        let key = (namespace.unwrap_or_default().to_owned(), name.to_owned());
        let freed = self
            .in_flight
            .lock()
            .is_ok_and(|mut in_flight| in_flight.remove(&key));
        if freed {
            self.waker.wake();
        }
    }

    /// Whether a bulk request let this object in and its reconcile has not ended: the request
    /// is part of a pass, which the gate paces, not a change to coalesce.
    pub fn let_in_by_bulk(&self, namespace: &str, name: &str) -> bool {
        self.in_flight
            .lock()
            .is_ok_and(|in_flight| in_flight.contains(&(namespace.to_owned(), name.to_owned())))
    }

    fn has_room(&self) -> bool {
        self.in_flight
            .lock()
            .is_ok_and(|in_flight| in_flight.len() < BULK_WINDOW)
    }

    fn let_in<K: Resource<DynamicType = ()>>(&self, r: &ObjectRef<K>) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.insert((r.namespace.clone().unwrap_or_default(), r.name.clone()));
        }
    }
}

/// Requests that found the channel full, waiting for the receiver: (namespace, name) as inline
/// strings, since a sync that touches every object at once spills most of them.
struct Spill<K: Resource<DynamicType = ()>> {
    pending: Mutex<HashSet<(SmolStr, SmolStr)>>,
    waker: AtomicWaker,
    kind: std::marker::PhantomData<fn() -> K>,
}

/// The sending side of one kind's requests.
pub struct Queue<K: Resource<DynamicType = ()>> {
    tx: mpsc::Sender<ObjectRef<K>>,
    bulk: mpsc::Sender<ObjectRef<K>>,
    spill: Arc<Spill<K>>,
    overflows: Counter,
}

impl<K: Resource<DynamicType = ()>> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            bulk: self.bulk.clone(),
            spill: self.spill.clone(),
            overflows: self.overflows.clone(),
        }
    }
}

/// The receiving side: a stream for the reconcile loop ([`crate::controller::runner`]). Change-driven requests first, then
/// spilled ones, then bulk ones while the [`Gate`] has room.
pub struct Requests<K: Resource<DynamicType = ()>> {
    rx: mpsc::Receiver<ObjectRef<K>>,
    bulk: mpsc::Receiver<ObjectRef<K>>,
    spill: Arc<Spill<K>>,
    gate: Arc<Gate>,
}

/// A bounded request queue of `capacity`, counting overflow in `overflows`.
pub fn queue<K: Resource<DynamicType = ()>>(
    capacity: usize,
    overflows: Counter,
) -> (Queue<K>, Requests<K>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (bulk, bulk_rx) = mpsc::channel(BULK_WINDOW);
    let spill = Arc::new(Spill {
        pending: Mutex::new(HashSet::new()),
        waker: AtomicWaker::new(),
        kind: std::marker::PhantomData,
    });
    let queue = Queue {
        tx,
        bulk,
        spill: spill.clone(),
        overflows,
    };
    let requests = Requests {
        rx,
        bulk: bulk_rx,
        spill,
        gate: Arc::default(),
    };
    (queue, requests)
}

impl<K: Resource<DynamicType = ()>> Queue<K> {
    /// Asks for one reconcile. Never blocks and never loses the request while the receiver lives.
    pub fn request(&self, namespace: &str, name: &str) {
        let r = ObjectRef::new(name).within(namespace);
        match self.tx.try_send(r) {
            Ok(()) => {}
            // The controller has stopped: there is nothing to ask.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflows.inc();
                if let Ok(mut pending) = self.spill.pending.lock() {
                    pending.insert((namespace.into(), name.into()));
                }
                self.spill.waker.wake();
            }
        }
    }

    /// Asks for one reconcile as part of a bulk pass, waiting while the kind's gate is full; false
    /// once the controller has stopped.
    pub async fn request_bulk(&self, namespace: &str, name: &str) -> bool {
        let r = ObjectRef::new(name).within(namespace);
        self.bulk.send(r).await.is_ok()
    }
}

impl<K: Resource<DynamicType = ()>> Requests<K> {
    /// The gate the controller tells when a reconcile of this kind ends.
    pub fn gate(&self) -> Arc<Gate> {
        self.gate.clone()
    }

    fn pop_spilled(&self) -> Option<ObjectRef<K>> {
        let mut pending = self.spill.pending.lock().ok()?;
        let next = pending.iter().next().cloned()?;
        pending.remove(&next);
        let (namespace, name) = next;
        Some(ObjectRef::new(&name).within(&namespace))
    }
}

impl<K: Resource<DynamicType = ()>> Stream for Requests<K> {
    type Item = ObjectRef<K>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let closed = match this.rx.poll_recv(cx) {
            Poll::Ready(Some(r)) => return Poll::Ready(Some(r)),
            Poll::Ready(None) => true,
            Poll::Pending => false,
        };
        // Register before looking, so a spill after the look wakes this task.
        this.spill.waker.register(cx.waker());
        if let Some(r) = this.pop_spilled() {
            return Poll::Ready(Some(r));
        }
        // Likewise for the gate: a reconcile that ends after the look wakes this task.
        this.gate.waker.register(cx.waker());
        if this.gate.has_room()
            && let Poll::Ready(Some(r)) = this.bulk.poll_recv(cx)
        {
            this.gate.let_in(&r);
            return Poll::Ready(Some(r));
        }
        if closed {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

/// Where the controller's reconcile requests go, one queue per kind.
#[derive(Clone)]
pub struct Triggers {
    pub accounts: Queue<Account>,
    pub members: Queue<Member>,
    pub teams: Queue<Team>,
    pub roles: Queue<Role>,
    pub bindings: Queue<RoleBinding>,
}

/// The receiving ends of [`Triggers`], one per kind.
pub struct Receivers {
    pub accounts: Requests<Account>,
    pub members: Requests<Member>,
    pub teams: Requests<Team>,
    pub roles: Requests<Role>,
    pub bindings: Requests<RoleBinding>,
}

impl Triggers {
    /// One queue of `capacity` per kind, counting overflow per kind in `metrics`.
    pub fn bounded(capacity: usize, metrics: &Metrics) -> (Self, Receivers) {
        let counter = |kind: Kind| {
            metrics
                .trigger_overflows
                .get_or_create(&KindLabels {
                    kind: kind.as_str().to_owned(),
                })
                .clone()
        };
        let (accounts, a) = queue(capacity, counter(Kind::Account));
        let (members, m) = queue(capacity, counter(Kind::Member));
        let (teams, t) = queue(capacity, counter(Kind::Team));
        let (roles, r) = queue(capacity, counter(Kind::Role));
        let (bindings, b) = queue(capacity, counter(Kind::RoleBinding));
        (
            Self {
                accounts,
                members,
                teams,
                roles,
                bindings,
            },
            Receivers {
                accounts: a,
                members: m,
                teams: t,
                roles: r,
                bindings: b,
            },
        )
    }

    /// Sends one bulk request per object named, waiting for room in each kind's gate; false once
    /// the controller has stopped.
    pub async fn feed(&self, refs: &[Named]) -> bool {
        for r in refs {
            let (ns, name) = (r.namespace.as_str(), r.name.as_str());
            let sent = match r.kind {
                Kind::Account => self.accounts.request_bulk(ns, name).await,
                Kind::Member => self.members.request_bulk(ns, name).await,
                Kind::Team => self.teams.request_bulk(ns, name).await,
                Kind::Role => self.roles.request_bulk(ns, name).await,
                Kind::RoleBinding => self.bindings.request_bulk(ns, name).await,
            };
            if !sent {
                return false;
            }
        }
        true
    }

    /// Sends one request per object named.
    pub fn send(&self, refs: &[Named]) {
        for r in refs {
            let (ns, name) = (r.namespace.as_str(), r.name.as_str());
            match r.kind {
                Kind::Account => self.accounts.request(ns, name),
                Kind::Member => self.members.request(ns, name),
                Kind::Team => self.teams.request(ns, name),
                Kind::Role => self.roles.request(ns, name),
                Kind::RoleBinding => self.bindings.request(ns, name),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{FutureExt, StreamExt};

    #[tokio::test]
    async fn a_full_channel_spills_and_nothing_is_lost() {
        let overflows = Counter::default();
        let (q, mut rx) = queue::<Account>(2, overflows.clone());
        for i in 0..5 {
            q.request("team", &format!("a{i}"));
        }
        // A duplicate of a spilled request is kept once.
        q.request("team", "a4");
        assert_eq!(overflows.get(), 4);
        drop(q);
        let mut names: Vec<String> = rx.by_ref().map(|r| r.name).collect().await;
        names.sort();
        assert_eq!(names, ["a0", "a1", "a2", "a3", "a4"]);
    }

    #[tokio::test]
    async fn bulk_requests_wait_for_reconciles_to_end_and_changes_do_not_wait_behind_them() {
        let (q, mut rx) = queue::<Account>(8, Counter::default());
        let gate = rx.gate();
        let feeder = tokio::spawn({
            let q = q.clone();
            async move {
                for i in 0..BULK_WINDOW + 3 {
                    assert!(q.request_bulk("team", &format!("bulk{i}")).await);
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < BULK_WINDOW {
            got.push(rx.next().await.expect("a request").name);
        }
        // The window is full: a change goes first, and no bulk request comes until one of them
        // is reconciled; reconciling the change, or a bulk object again, frees nothing.
        q.request("team", "changed");
        assert_eq!(rx.next().await.map(|r| r.name).as_deref(), Some("changed"));
        gate.done(Some("team"), "changed");
        gate.done(Some("team"), "bulk0");
        assert_eq!(
            rx.next().await.map(|r| r.name),
            Some(format!("bulk{BULK_WINDOW}"))
        );
        gate.done(Some("team"), "bulk0");
        assert!(
            rx.next().now_or_never().is_none(),
            "the gate holds bulk back"
        );
        for i in 1..3 {
            gate.done(Some("team"), &format!("bulk{i}"));
            rx.next().await.expect("the rest");
        }
        feeder.await.expect("every bulk request was taken");
        assert_eq!(got[0], "bulk0", "in the order sent");
    }

    #[tokio::test]
    async fn a_spill_wakes_a_waiting_receiver() {
        let (q, mut rx) = queue::<Account>(1, Counter::default());
        q.request("team", "a0");
        assert_eq!(rx.next().await.map(|r| r.name).as_deref(), Some("a0"));
        let waiting = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(r) = rx.next().await {
                got.push(r.name);
            }
            got
        });
        tokio::task::yield_now().await;
        for i in 1..4 {
            q.request("team", &format!("a{i}"));
        }
        drop(q);
        let mut got = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
            .await
            .expect("the receiver woke")
            .expect("the task ran");
        got.sort();
        assert_eq!(got, ["a1", "a2", "a3"]);
    }
}
