//! Reconcile requests from the ingest to the controller: one bounded channel per kind. A request
//! that finds its channel full is not dropped: it waits in a per-kind set (deduplicated, so bounded
//! by the number of objects) that the receiver drains once the channel is empty, and the overflow is
//! counted in `rolegate_trigger_overflows`.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::api::{Account, Kind, Member, ObjectRef as Named, Role, RoleBinding, Team};
use crate::metrics::{KindLabels, Metrics};

/// Requests buffered per kind before they spill into the overflow set.
pub const CAPACITY: usize = 4096;

/// Requests that found the channel full, waiting for the receiver.
struct Spill<K: Resource<DynamicType = ()>> {
    pending: Mutex<HashSet<ObjectRef<K>>>,
    waker: AtomicWaker,
}

/// The sending side of one kind's requests.
pub struct Queue<K: Resource<DynamicType = ()>> {
    tx: mpsc::Sender<ObjectRef<K>>,
    spill: Arc<Spill<K>>,
    overflows: Counter,
}

impl<K: Resource<DynamicType = ()>> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            spill: self.spill.clone(),
            overflows: self.overflows.clone(),
        }
    }
}

/// The receiving side: a stream for `Controller::reconcile_on`.
pub struct Requests<K: Resource<DynamicType = ()>> {
    rx: mpsc::Receiver<ObjectRef<K>>,
    spill: Arc<Spill<K>>,
}

/// A bounded request queue of `capacity`, counting overflow in `overflows`.
pub fn queue<K: Resource<DynamicType = ()>>(
    capacity: usize,
    overflows: Counter,
) -> (Queue<K>, Requests<K>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let spill = Arc::new(Spill {
        pending: Mutex::new(HashSet::new()),
        waker: AtomicWaker::new(),
    });
    let queue = Queue {
        tx,
        spill: spill.clone(),
        overflows,
    };
    (queue, Requests { rx, spill })
}

impl<K: Resource<DynamicType = ()>> Queue<K> {
    /// Asks for one reconcile. Never blocks and never loses the request while the receiver lives.
    pub fn request(&self, namespace: &str, name: &str) {
        let r = ObjectRef::new(name).within(namespace);
        match self.tx.try_send(r) {
            Ok(()) => {}
            // The controller has stopped: there is nothing to ask.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(r)) => {
                self.overflows.inc();
                if let Ok(mut pending) = self.spill.pending.lock() {
                    pending.insert(r);
                }
                self.spill.waker.wake();
            }
        }
    }
}

impl<K: Resource<DynamicType = ()>> Requests<K> {
    fn pop_spilled(&self) -> Option<ObjectRef<K>> {
        let mut pending = self.spill.pending.lock().ok()?;
        let next = pending.iter().next().cloned()?;
        pending.remove(&next);
        Some(next)
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
        match this.pop_spilled() {
            Some(r) => Poll::Ready(Some(r)),
            None if closed => Poll::Ready(None),
            None => Poll::Pending,
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
    use futures::StreamExt;

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
