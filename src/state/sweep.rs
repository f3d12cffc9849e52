//! Whole accounts waiting to be reconciled, each once. Two things ask for one:
//!
//! - a change that touches many accounts at once (a catalog Role that every account binds
//!   arriving at the end of a sync): asking for each of their objects would hold a request per
//!   object, and a coalescing timer for each, all at once (160,000 at 10,000 accounts); an
//!   account here costs one entry, and its objects are asked for when its turn comes, through the
//!   kinds' gated bulk queues like the resync's pass ([`super::Shared::sweep`]);
//! - an object that holds back a finding that may still heal (a reference to an object on its
//!   way, see `controller::Context`): rather than a timer per object, its account waits here until
//!   its namespace has been quiet for the grace period, then is swept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio::time::Instant;

use crate::engine::AccountKey;

/// What is waiting, under one lock.
#[derive(Debug, Default)]
struct Waiting {
    /// Accounts whose every object is to be reconciled.
    due: BTreeSet<AccountKey>,
    /// Accounts holding back a finding, by namespace, until the namespace is quiet.
    held: BTreeMap<String, BTreeSet<AccountKey>>,
}

/// Accounts to sweep, and accounts held until their namespace is quiet.
#[derive(Debug, Default)]
pub struct Sweep {
    waiting: Mutex<Waiting>,
    /// Wakes the sweeping task: accounts became due, or a namespace began to hold one.
    pub(super) wake: tokio::sync::Notify,
}

impl Sweep {
    /// Asks for every object of `accounts` to be reconciled.
    pub fn mark(&self, accounts: impl IntoIterator<Item = AccountKey>) {
        let added = self.waiting.lock().is_ok_and(|mut w| {
            let before = w.due.len();
            w.due.extend(accounts);
            w.due.len() > before
        });
        if added {
            self.wake.notify_one();
        }
    }

    /// Holds `account` until its namespace is quiet: one of its objects held back a finding.
    pub fn hold(&self, account: AccountKey) {
        let first = self.waiting.lock().is_ok_and(|mut w| {
            let held = w.held.entry(account.namespace.clone()).or_default();
            held.insert(account) && held.len() == 1
        });
        if first {
            self.wake.notify_one();
        }
    }

    /// The next account to sweep. Sweeping it reconciles every object it has, so it is held no
    /// more: an object that still holds back its finding holds it again.
    pub fn take(&self) -> Option<AccountKey> {
        let mut w = self.waiting.lock().ok()?;
        let account = w.due.pop_first()?;
        if let Some(held) = w.held.get_mut(&account.namespace) {
            held.remove(&account);
            if held.is_empty() {
                w.held.remove(&account.namespace);
            }
        }
        Some(account)
    }

    /// Whether an account is due.
    pub fn is_due(&self) -> bool {
        self.waiting.lock().is_ok_and(|w| !w.due.is_empty())
    }

    /// Makes due the held accounts of every namespace whose `quiet_at` (when it will have been
    /// quiet for the grace period; `None`: already) has come by `now`. Returns the earliest
    /// `quiet_at` still ahead, when to look again.
    pub fn release(
        &self,
        now: Instant,
        quiet_at: impl Fn(&str) -> Option<Instant>,
    ) -> Option<Instant> {
        let mut w = self.waiting.lock().ok()?;
        let mut next: Option<Instant> = None;
        let mut quiet = Vec::new();
        for namespace in w.held.keys() {
            match quiet_at(namespace).filter(|at| *at > now) {
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => quiet.push(namespace.clone()),
            }
        }
        for namespace in quiet {
            if let Some(accounts) = w.held.remove(&namespace) {
                w.due.extend(accounts);
            }
        }
        next
    }

    /// Accounts due and accounts held (for tests).
    pub fn len(&self) -> (usize, usize) {
        self.waiting.lock().map_or((0, 0), |w| {
            (w.due.len(), w.held.values().map(BTreeSet::len).sum())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(ns: &str, account: &str) -> AccountKey {
        AccountKey::new(ns, account)
    }

    #[test]
    fn an_account_marked_twice_is_swept_once() {
        let sweep = Sweep::default();
        sweep.mark([key("ns", "b"), key("ns", "a")]);
        sweep.mark([key("ns", "a")]);
        assert_eq!(sweep.len(), (2, 0));
        assert_eq!(sweep.take(), Some(key("ns", "a")));
        assert_eq!(sweep.take(), Some(key("ns", "b")));
        assert_eq!(sweep.take(), None);
        assert!(!sweep.is_due());
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_account_is_released_once_its_namespace_is_quiet() {
        let sweep = Sweep::default();
        let now = Instant::now();
        let quiet_at = now + Duration::from_secs(30);
        sweep.hold(key("busy", "a"));
        sweep.hold(key("busy", "b"));
        sweep.hold(key("calm", "c"));
        let next = sweep.release(now, |ns| (ns == "busy").then_some(quiet_at));
        assert_eq!(
            next,
            Some(quiet_at),
            "the busy namespace is looked at again"
        );
        assert_eq!(
            sweep.len(),
            (1, 2),
            "only the quiet namespace's account is due"
        );
        assert_eq!(sweep.take(), Some(key("calm", "c")));
        assert_eq!(sweep.release(quiet_at, |_| Some(quiet_at)), None);
        assert_eq!(sweep.len(), (2, 0));
    }

    #[test]
    fn sweeping_an_account_ends_its_hold() {
        let sweep = Sweep::default();
        sweep.hold(key("ns", "a"));
        sweep.mark([key("ns", "a")]);
        assert_eq!(sweep.take(), Some(key("ns", "a")));
        assert_eq!(
            sweep.len(),
            (0, 0),
            "its objects are reconciled: any still waiting holds again"
        );
    }

    #[tokio::test]
    async fn marking_and_a_first_hold_wake_the_sweeper_and_a_second_hold_does_not() {
        let sweep = Sweep::default();
        sweep.hold(key("ns", "a"));
        tokio::time::timeout(Duration::from_secs(1), sweep.wake.notified())
            .await
            .expect("a first hold in a namespace wakes");
        sweep.hold(key("ns", "b"));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), sweep.wake.notified())
                .await
                .is_err(),
            "the namespace is already looked after"
        );
        sweep.mark([key("ns", "c")]);
        tokio::time::timeout(Duration::from_secs(1), sweep.wake.notified())
            .await
            .expect("marking wakes");
    }
}
