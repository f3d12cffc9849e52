//! One kind's reconcile loop: takes requests, runs at most `concurrency` reconciles at once,
//! never two of the same object, and looks again when a reconcile asks (a window boundary) or
//! fails (after a delay). What controller-runtime's work queue and kube's `Controller` do, over
//! the shared state's records instead of a reflector store (see [`crate::state::kept`]).
//!
//! A request for an object waiting its turn is merged with it; one for an object being reconciled
//! runs again once the running one ends, so a change during a reconcile is never missed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use tokio_util::time::{DelayQueue, delay_queue};

/// What a reconcile asks of the loop once it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Look again after this long although nothing changed (a window boundary, R18).
    Requeue(Duration),
    /// Wait for a change (or the periodic resync).
    AwaitChange,
}

impl Action {
    pub fn requeue(after: Duration) -> Self {
        Self::Requeue(after)
    }

    pub fn await_change() -> Self {
        Self::AwaitChange
    }
}

/// One object of the kind: (namespace, name).
pub type Key = (String, String);

/// How long a failed reconcile waits before it runs again: 409s, 5xx and timeouts are all
/// transient here.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Objects waiting for their turn, in the order asked, each once.
#[derive(Default)]
struct Pending {
    order: VecDeque<Key>,
    queued: HashSet<Key>,
}

impl Pending {
    fn push(&mut self, key: Key) {
        if self.queued.insert(key.clone()) {
            self.order.push_back(key);
        }
    }

    fn pop(&mut self) -> Option<Key> {
        let key = self.order.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }
}

/// Timers for objects that asked to be looked at again: one per object, the earliest kept.
#[derive(Default)]
struct Later {
    queue: DelayQueue<Key>,
    keys: HashMap<Key, delay_queue::Key>,
}

impl Later {
    fn schedule(&mut self, key: Key, after: Duration) {
        match self.keys.get(&key) {
            Some(timer) => {
                let due = tokio::time::Instant::now() + after;
                if due < self.queue.deadline(timer) {
                    self.queue.reset_at(timer, due);
                }
            }
            None => {
                let timer = self.queue.insert(key.clone(), after);
                self.keys.insert(key, timer);
            }
        }
    }

    /// The next object due; pending forever while there is none.
    async fn next(&mut self) -> Key {
        let Some(expired) = self.queue.next().await else {
            return std::future::pending().await;
        };
        let key = expired.into_inner();
        self.keys.remove(&key);
        key
    }
}

/// Runs reconciles for `requests` until `shutdown` resolves, then lets the running ones finish.
/// `reconcile` returns `None` for an object it cannot read (gone, or not yet in the index: its
/// arrival there asks again). `ended` is told of every request taken, when it is done with.
pub async fn run<R, F, Fut, E>(
    requests: R,
    mut reconcile: F,
    concurrency: usize,
    mut ended: E,
    shutdown: impl Future<Output = ()>,
) where
    R: Stream<Item = Key>,
    F: FnMut(&Key) -> Option<Fut>,
    Fut: Future<Output = Result<Action, ()>>,
    E: FnMut(&Key),
{
    let concurrency = concurrency.max(1);
    let mut requests = std::pin::pin!(requests.fuse());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut pending = Pending::default();
    let mut later = Later::default();
    // Objects being reconciled, and whether a request for them came meanwhile.
    let mut running: HashMap<Key, bool> = HashMap::new();
    let mut reconciles = FuturesUnordered::new();
    let mut open = true;
    loop {
        while running.len() < concurrency
            && let Some(key) = pending.pop()
        {
            match reconcile(&key) {
                Some(fut) => {
                    running.insert(key.clone(), false);
                    reconciles.push(async move { (key, fut.await) });
                }
                None => ended(&key),
            }
        }
        if !open && reconciles.is_empty() {
            return;
        }
        tokio::select! {
            biased;
            () = &mut shutdown, if open => open = false,
            Some((key, result)) = reconciles.next() => {
                ended(&key);
                let again = running.remove(&key).unwrap_or(false);
                match result {
                    Ok(Action::Requeue(after)) => later.schedule(key.clone(), after),
                    Ok(Action::AwaitChange) => {}
                    Err(()) => later.schedule(key.clone(), RETRY_AFTER),
                }
                if again && open {
                    pending.push(key);
                }
            }
            key = later.next(), if open => enqueue(&mut pending, &mut running, key),
            Some(key) = requests.next(), if open => enqueue(&mut pending, &mut running, key),
        }
    }
}

fn enqueue(pending: &mut Pending, running: &mut HashMap<Key, bool>, key: Key) {
    match running.get_mut(&key) {
        Some(again) => *again = true,
        None => pending.push(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use std::sync::{Arc, Mutex};
    use tokio::sync::Notify;

    fn key(name: &str) -> Key {
        ("team".to_owned(), name.to_owned())
    }

    /// Records what ran and how many ran at once.
    #[derive(Default)]
    struct Log {
        started: Vec<String>,
        ended: Vec<String>,
        now: usize,
        most: usize,
    }

    #[tokio::test]
    async fn at_most_concurrency_run_and_a_request_during_a_reconcile_runs_it_again() {
        let (tx, rx) = mpsc::unbounded();
        let log = Arc::new(Mutex::new(Log::default()));
        let release = Arc::new(Notify::new());
        let stop = Arc::new(Notify::new());
        let runner = tokio::spawn({
            let (log, release, stop) = (log.clone(), release.clone(), stop.clone());
            let ended_log = log.clone();
            async move {
                run(
                    rx,
                    move |k: &Key| {
                        let (log, release) = (log.clone(), release.clone());
                        let name = k.1.clone();
                        Some(async move {
                            {
                                let mut l = log.lock().expect("log");
                                l.started.push(name.clone());
                                l.now += 1;
                                l.most = l.most.max(l.now);
                            }
                            release.notified().await;
                            log.lock().expect("log").now -= 1;
                            Ok(Action::AwaitChange)
                        })
                    },
                    2,
                    move |k: &Key| ended_log.lock().expect("log").ended.push(k.1.clone()),
                    async move { stop.notified().await },
                )
                .await
            }
        });
        for name in ["a", "b", "c", "a", "c"] {
            tx.unbounded_send(key(name)).expect("sent");
        }
        let started = |log: &Arc<Mutex<Log>>| log.lock().expect("log").started.clone();
        // Lets the runner go until `done` holds, releasing a reconcile each time if `release`.
        let until = |done: &dyn Fn() -> bool, release_one: bool| {
            let release = release.clone();
            let done = done();
            async move {
                if !done {
                    if release_one {
                        release.notify_one();
                    }
                    tokio::task::yield_now().await;
                }
                done
            }
        };
        let mut turns = 0;
        while !until(&|| started(&log).len() >= 2, false).await {
            turns += 1;
            assert!(turns < 10_000, "the runner never started two");
        }
        assert_eq!(started(&log), ["a", "b"], "two at once, in order");
        // a is running and asked for again: it runs again; c is waiting and asked for again: the
        // two requests are one reconcile.
        while !until(&|| started(&log).len() >= 4, true).await {
            turns += 1;
            assert!(turns < 10_000, "ran {:?}", started(&log));
        }
        let mut ran = started(&log);
        ran.sort();
        assert_eq!(ran, ["a", "a", "b", "c"].map(String::from).to_vec());
        stop.notify_one();
        while !until(&|| log.lock().expect("log").now == 0, true).await {
            turns += 1;
            assert!(turns < 10_000, "the running reconciles never ended");
        }
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("stops after the running reconciles")
            .expect("no panic");
        let log = log.lock().expect("log");
        assert_eq!(log.most, 2);
        assert_eq!(
            log.ended.len(),
            4,
            "every reconcile that ran is reported ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_retries_after_a_delay_and_a_requeue_comes_back() {
        let (tx, rx) = mpsc::unbounded();
        let runs: Arc<Mutex<Vec<(String, tokio::time::Instant)>>> = Arc::default();
        let t0 = tokio::time::Instant::now();
        let runner = tokio::spawn({
            let runs = runs.clone();
            run(
                rx,
                move |k: &Key| {
                    let runs = runs.clone();
                    let name = k.1.clone();
                    Some(async move {
                        let mut runs = runs.lock().expect("runs");
                        let first = !runs.iter().any(|(n, _)| *n == name);
                        runs.push((name.clone(), tokio::time::Instant::now()));
                        match (name.as_str(), first) {
                            ("fails", true) => Err(()),
                            ("window", true) => Ok(Action::Requeue(Duration::from_secs(30))),
                            _ => Ok(Action::AwaitChange),
                        }
                    })
                },
                4,
                |_: &Key| {},
                tokio::time::sleep(Duration::from_secs(60)),
            )
        });
        tx.unbounded_send(key("fails")).expect("sent");
        tx.unbounded_send(key("window")).expect("sent");
        tx.unbounded_send(key("gone")).expect("sent");
        runner.await.expect("stops at the shutdown");
        let runs = runs.lock().expect("runs");
        let at = |name: &str| -> Vec<u64> {
            runs.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, t)| (*t - t0).as_secs())
                .collect()
        };
        assert_eq!(at("fails"), [0, RETRY_AFTER.as_secs()]);
        assert_eq!(at("window"), [0, 30]);
        assert_eq!(
            at("gone"),
            [0],
            "a reconcile that awaits a change runs once"
        );
    }

    #[tokio::test]
    async fn an_object_that_cannot_be_read_is_reported_ended_without_a_reconcile() {
        let (tx, rx) = mpsc::unbounded();
        let ended: Arc<Mutex<Vec<String>>> = Arc::default();
        tx.unbounded_send(key("missing")).expect("sent");
        drop(tx);
        let seen = ended.clone();
        tokio::time::timeout(
            Duration::from_secs(5),
            run(
                rx,
                |_: &Key| None::<std::future::Ready<Result<Action, ()>>>,
                1,
                move |k: &Key| seen.lock().expect("ended").push(k.1.clone()),
                tokio::time::sleep(Duration::from_millis(200)),
            ),
        )
        .await
        .expect("stops at the shutdown");
        assert_eq!(*ended.lock().expect("ended"), ["missing"]);
    }
}
