//! One kind's reconcile loop: takes requests, runs at most `concurrency` reconciles at once,
//! never two of the same object, and looks again when a reconcile asks (a window boundary) or
//! fails (after a delay). What controller-runtime's work queue and kube's `Controller` do, over
//! the shared state's records instead of a reflector store (see [`crate::state::kept`]).
//!
//! A request for an object waiting its turn is merged with it; one for an object being reconciled
//! runs again once the running one ends, so a change during a reconcile is never missed.
//!
//! A change waits [`Pacing::delay`] before its reconcile, so that the changes arriving with it (a
//! sync streaming an account's objects in, thousands of bindings naming one catalog Role) are
//! judged and written together, once. A bulk pass (leading starts, the resync, the sweep of
//! accounts a change to many touched: see [`crate::state::sweep`]) is paced by its gate instead
//! and runs at once. A failed reconcile runs again after a per-object exponential
//! backoff, as controller-runtime's default rate limiter does; a success forgets it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use smol_str::SmolStr;
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

/// One object of the kind: (namespace, name). Inline strings: a sync that asks for every object
/// at once holds each key in the queue, its set and its timer, without an allocation per copy.
pub type Key = (SmolStr, SmolStr);

/// How a request wants to be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// A change: waits [`Pacing::delay`], merged with the changes that arrive meanwhile.
    Coalesce,
    /// Part of a bulk pass, which its gate already paces: at once.
    Now,
}

/// Delays of the loop: the coalescing delay of a change, and the backoff of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// How long a change waits for the changes arriving with it (`--status-delay`).
    pub delay: Duration,
    /// The first retry of a failed reconcile; each failure in a row doubles it.
    pub backoff: Duration,
    /// The longest wait between retries.
    pub backoff_cap: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            delay: STATUS_DELAY,
            backoff: BACKOFF,
            backoff_cap: BACKOFF_CAP,
        }
    }
}

impl Pacing {
    /// The wait before retry number `failures` (1 for the first failure).
    pub fn retry_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.backoff
            .saturating_mul(1 << doublings)
            .min(self.backoff_cap)
    }
}

/// A change's default coalescing delay: short enough that a status still shows a change within
/// about a second, long enough for one kubectl apply's objects to arrive together.
pub const STATUS_DELAY: Duration = Duration::from_millis(300);

/// The first retry after a failure, and the cap: controller-runtime's default per-item limiter
/// starts at 5 ms; its 1,000 s cap is shortened to 5 minutes.
pub const BACKOFF: Duration = Duration::from_millis(5);
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

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

    fn contains(&self, key: &Key) -> bool {
        self.queued.contains(key)
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

    fn cancel(&mut self, key: &Key) {
        if let Some(timer) = self.keys.remove(key) {
            self.queue.remove(&timer);
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
    pacing: Pacing,
    mut ended: E,
    shutdown: impl Future<Output = ()>,
) where
    R: Stream<Item = (Key, Pace)>,
    F: FnMut(&Key) -> Option<Fut>,
    Fut: Future<Output = Result<Action, ()>>,
    E: FnMut(&Key),
{
    let concurrency = concurrency.max(1);
    let mut requests = std::pin::pin!(requests.fuse());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut queue = Queue {
        pacing,
        ..Queue::default()
    };
    let mut reconciles = FuturesUnordered::new();
    let mut open = true;
    loop {
        while queue.running.len() < concurrency
            && let Some(key) = queue.pending.pop()
        {
            match reconcile(&key) {
                Some(fut) => {
                    queue.running.insert(key.clone(), false);
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
                queue.finished(key, result, open);
            }
            key = queue.later.next(), if open => queue.due(key),
            Some((key, pace)) = requests.next(), if open => queue.request(key, pace),
        }
    }
}

/// Where every object stands: waiting for a timer (a coalescing delay, a requeue, a backoff),
/// waiting its turn, or running (and whether asked for again meanwhile).
#[derive(Default)]
struct Queue {
    pacing: Pacing,
    pending: Pending,
    later: Later,
    running: HashMap<Key, bool>,
    /// Failures in a row, per object, for the backoff.
    failures: HashMap<Key, u32>,
}

impl Queue {
    fn request(&mut self, key: Key, pace: Pace) {
        if let Some(again) = self.running.get_mut(&key) {
            *again = true;
        } else if !self.pending.contains(&key) {
            match pace {
                Pace::Coalesce if !self.pacing.delay.is_zero() => {
                    self.later.schedule(key, self.pacing.delay);
                }
                _ => {
                    self.later.cancel(&key);
                    self.pending.push(key);
                }
            }
        }
    }

    fn due(&mut self, key: Key) {
        if let Some(again) = self.running.get_mut(&key) {
            *again = true;
        } else {
            self.pending.push(key);
        }
    }

    fn finished(&mut self, key: Key, result: Result<Action, ()>, open: bool) {
        let again = self.running.remove(&key).unwrap_or(false);
        match result {
            Ok(action) => {
                self.failures.remove(&key);
                if let Action::Requeue(after) = action {
                    self.later.schedule(key.clone(), after);
                }
            }
            Err(()) => {
                let failures = self.failures.entry(key.clone()).or_default();
                *failures = failures.saturating_add(1);
                let after = self.pacing.retry_after(*failures);
                self.later.schedule(key.clone(), after);
            }
        }
        if again && open {
            self.request(key, Pace::Coalesce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use std::sync::{Arc, Mutex};
    use tokio::sync::Notify;

    fn key(name: &str) -> Key {
        ("team".into(), name.into())
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
                        let name = k.1.to_string();
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
                    // At once: this test is about merging, not the delay.
                    Pacing {
                        delay: Duration::ZERO,
                        ..Pacing::default()
                    },
                    move |k: &Key| ended_log.lock().expect("log").ended.push(k.1.to_string()),
                    async move { stop.notified().await },
                )
                .await
            }
        });
        for name in ["a", "b", "c", "a", "c"] {
            tx.unbounded_send((key(name), Pace::Now)).expect("sent");
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

    /// Runs the loop under paused time until `stop`, with `outcome(name, run number)` as each
    /// reconcile's result and `send` feeding requests; returns when each object ran, in
    /// milliseconds from the start.
    async fn timeline(
        pacing: Pacing,
        outcome: fn(&str, usize) -> Result<Action, ()>,
        send: impl Future<Output = ()> + Send + 'static,
        rx: mpsc::UnboundedReceiver<(Key, Pace)>,
        stop: Duration,
    ) -> HashMap<String, Vec<u128>> {
        let runs: Arc<Mutex<HashMap<String, Vec<u128>>>> = Arc::default();
        let t0 = tokio::time::Instant::now();
        let sender = tokio::spawn(send);
        let seen = runs.clone();
        run(
            rx,
            move |k: &Key| {
                let runs = seen.clone();
                let name = k.1.to_string();
                Some(async move {
                    let mut runs = runs.lock().expect("runs");
                    let at = runs.entry(name.clone()).or_default();
                    at.push((tokio::time::Instant::now() - t0).as_millis());
                    outcome(&name, at.len())
                })
            },
            4,
            pacing,
            |_: &Key| {},
            tokio::time::sleep(stop),
        )
        .await;
        sender.abort();
        runs.lock().expect("runs").clone()
    }

    fn at(runs: &HashMap<String, Vec<u128>>, name: &str) -> Vec<u128> {
        runs.get(name).cloned().unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_backs_off_doubling_and_a_success_resets_it() {
        let (tx, rx) = mpsc::unbounded();
        let later = tx.clone();
        let send = async move {
            later
                .unbounded_send((key("flaky"), Pace::Now))
                .expect("sent");
            later
                .unbounded_send((key("window"), Pace::Now))
                .expect("sent");
            later
                .unbounded_send((key("gone"), Pace::Now))
                .expect("sent");
            // Long after flaky succeeded: one more failure waits the first step again.
            tokio::time::sleep(Duration::from_secs(10)).await;
            later
                .unbounded_send((key("flaky"), Pace::Now))
                .expect("sent");
        };
        let runs = timeline(
            Pacing::default(),
            |name, run| match (name, run) {
                ("flaky", 1..=4 | 6) => Err(()),
                ("window", 1) => Ok(Action::Requeue(Duration::from_secs(30))),
                _ => Ok(Action::AwaitChange),
            },
            send,
            rx,
            Duration::from_secs(60),
        )
        .await;
        drop(tx);
        // 5, 10, 20, 40 ms after each failure in a row; after the success, 5 ms again.
        assert_eq!(at(&runs, "flaky"), [0, 5, 15, 35, 75, 10_000, 10_005]);
        assert_eq!(at(&runs, "window"), [0, 30_000]);
        assert_eq!(
            at(&runs, "gone"),
            [0],
            "a reconcile that awaits a change runs once"
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let pacing = Pacing::default();
        let steps: Vec<Duration> = [1, 2, 3, 10].map(|n| pacing.retry_after(n)).to_vec();
        assert_eq!(
            steps,
            [5, 10, 20, 2_560].map(Duration::from_millis).to_vec()
        );
        assert_eq!(pacing.retry_after(17), BACKOFF_CAP);
        assert_eq!(pacing.retry_after(u32::MAX), BACKOFF_CAP, "no overflow");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_is_one_reconcile_within_the_delay() {
        let (tx, rx) = mpsc::unbounded();
        let later = tx.clone();
        let send = async move {
            // A catalog role asked for by 1,000 arriving bindings over 200 ms, then once more
            // a second later.
            for _ in 0..200 {
                for _ in 0..5 {
                    later
                        .unbounded_send((key("role"), Pace::Coalesce))
                        .expect("sent");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(800)).await;
            later
                .unbounded_send((key("role"), Pace::Coalesce))
                .expect("sent");
            // A bulk request does not wait.
            later
                .unbounded_send((key("bulk"), Pace::Now))
                .expect("sent");
        };
        let runs = timeline(
            Pacing::default(),
            |_, _| Ok(Action::AwaitChange),
            send,
            rx,
            Duration::from_secs(5),
        )
        .await;
        drop(tx);
        let role = at(&runs, "role");
        assert_eq!(
            role.len(),
            2,
            "the burst is one reconcile, the later change another: {role:?}"
        );
        assert_eq!(
            role[0],
            STATUS_DELAY.as_millis(),
            "at most the delay after the first change"
        );
        let second = role[1];
        assert!(
            (1_000..=1_000 + STATUS_DELAY.as_millis() + 1).contains(&second),
            "the later change waits the delay once more: {second}"
        );
        assert_eq!(at(&runs, "bulk").len(), 1);
        assert!(at(&runs, "bulk")[0] < second, "a bulk request runs at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_is_parked_until_a_change() {
        // The controller answers an error that retrying cannot fix (413, 422) by reporting it on
        // the object and awaiting a change: no retry however long, one reconcile per change.
        let (tx, rx) = mpsc::unbounded();
        let later = tx.clone();
        let send = async move {
            later
                .unbounded_send((key("huge"), Pace::Coalesce))
                .expect("sent");
            tokio::time::sleep(Duration::from_secs(600)).await;
            later
                .unbounded_send((key("huge"), Pace::Coalesce))
                .expect("sent");
        };
        let runs = timeline(
            Pacing::default(),
            |_, _| Ok(Action::AwaitChange),
            send,
            rx,
            Duration::from_secs(1_200),
        )
        .await;
        drop(tx);
        let delay = STATUS_DELAY.as_millis();
        assert_eq!(at(&runs, "huge"), [delay, 600_000 + delay]);
    }

    #[tokio::test]
    async fn an_object_that_cannot_be_read_is_reported_ended_without_a_reconcile() {
        let (tx, rx) = mpsc::unbounded();
        let ended: Arc<Mutex<Vec<String>>> = Arc::default();
        tx.unbounded_send((key("missing"), Pace::Now))
            .expect("sent");
        drop(tx);
        let seen = ended.clone();
        tokio::time::timeout(
            Duration::from_secs(5),
            run(
                rx,
                |_: &Key| None::<std::future::Ready<Result<Action, ()>>>,
                1,
                Pacing::default(),
                move |k: &Key| seen.lock().expect("ended").push(k.1.to_string()),
                tokio::time::sleep(Duration::from_millis(200)),
            ),
        )
        .await
        .expect("stops at the shutdown");
        assert_eq!(*ended.lock().expect("ended"), ["missing"]);
    }
}
