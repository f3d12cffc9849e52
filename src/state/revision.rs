//! How fresh the caches are, in the API server's resourceVersions: what the decision API answers
//! `minResourceVersion` with.
//!
//! The assumption, the one the API server's own watch cache makes: a resourceVersion is an etcd
//! revision, a decimal integer, and the five kinds share one etcd, so resourceVersions of any of
//! them compare as numbers. Each kind's watch delivers its events in resourceVersion order, but the
//! five watches are independent streams, so having seen a higher version on one says nothing of
//! the others. So revision `x` counts as reached when
//! - the event at exactly `x` has been delivered (a caller's write to one of the five kinds: its
//!   kind's watch is ordered, so everything of that kind before it is in too), or
//! - every kind's watch has delivered an event at or past `x`, or
//! - `x` is at or below the floor: a revision read before the watches started, which their first
//!   lists therefore include.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::api::Kind;

/// Delivered revisions remembered exactly; older ones count only through the watermarks or the
/// floor. At a few hundred writes a second this covers minutes, far longer than a caller waits
/// between its write and its check.
pub const RECENT: usize = 65_536;

#[derive(Debug, Default)]
struct Seen {
    /// The highest revision each kind's watch has delivered.
    watermarks: [u64; Kind::ALL.len()],
    recent: HashSet<u64>,
    order: VecDeque<u64>,
}

/// The revisions the watches have delivered.
#[derive(Debug, Default)]
pub struct Revisions {
    seen: Mutex<Seen>,
    /// The highest revision delivered by any watch: what answers report.
    latest: AtomicU64,
    floor: AtomicU64,
    changed: tokio::sync::Notify,
}

/// Parses a resourceVersion as the watch cache does: a decimal `u64`.
pub fn parse(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

impl Revisions {
    /// A watch of `kind` delivered an object at `rv`. Called after the object reached the index,
    /// so a reader that sees the revision reached reads an index that holds it.
    pub fn observe(&self, kind: Kind, rv: Option<&str>) {
        let Some(rv) = rv.and_then(parse) else {
            return;
        };
        if let Ok(mut seen) = self.seen.lock() {
            let mark = &mut seen.watermarks[kind as usize];
            *mark = (*mark).max(rv);
            if seen.recent.insert(rv) {
                seen.order.push_back(rv);
                while seen.order.len() > RECENT {
                    if let Some(old) = seen.order.pop_front() {
                        seen.recent.remove(&old);
                    }
                }
            }
        }
        self.latest.fetch_max(rv, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Everything at or below `rv` is in the caches (read before the watches started).
    pub fn set_floor(&self, rv: u64) {
        self.floor.fetch_max(rv, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// The highest revision delivered (or the floor): the state an answer is computed on holds
    /// it.
    pub fn latest(&self) -> u64 {
        self.latest
            .load(Ordering::Acquire)
            .max(self.floor.load(Ordering::Acquire))
    }

    /// Whether the caches hold every change up to the write at `rv` (see the module's doc).
    pub fn reached(&self, rv: u64) -> bool {
        if rv <= self.floor.load(Ordering::Acquire) {
            return true;
        }
        self.seen
            .lock()
            .is_ok_and(|seen| seen.recent.contains(&rv) || seen.watermarks.iter().all(|m| *m >= rv))
    }

    /// Waits at most `timeout` for [`Revisions::reached`]; the bool says whether it was.
    pub async fn until_reached(&self, rv: u64, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if self.reached(rv) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_write_is_reached_and_its_neighbours_are_not() {
        let revisions = Revisions::default();
        revisions.observe(Kind::RoleBinding, Some("120"));
        assert!(revisions.reached(120), "the write itself");
        // 110 may be a write to a kind whose watch has not delivered it yet.
        assert!(!revisions.reached(110));
        assert!(!revisions.reached(121));
        assert_eq!(revisions.latest(), 120);
    }

    #[test]
    fn every_watch_past_a_revision_reaches_it() {
        let revisions = Revisions::default();
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            assert!(!revisions.reached(100), "not before every kind passed it");
            revisions.observe(kind, Some(&(200 + i).to_string()));
        }
        assert!(revisions.reached(100));
    }

    #[test]
    fn the_floor_covers_what_the_first_lists_hold() {
        let revisions = Revisions::default();
        revisions.set_floor(50);
        assert!(revisions.reached(50));
        assert!(!revisions.reached(51));
        assert_eq!(revisions.latest(), 50);
    }

    #[test]
    fn versions_that_are_no_number_are_ignored() {
        let revisions = Revisions::default();
        revisions.observe(Kind::Member, Some("abc"));
        revisions.observe(Kind::Member, None);
        assert_eq!(revisions.latest(), 0);
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_the_write_arrives() {
        let revisions = std::sync::Arc::new(Revisions::default());
        let waiter = {
            let r = revisions.clone();
            tokio::spawn(async move { r.until_reached(7, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        revisions.observe(Kind::Team, Some("7"));
        assert!(waiter.await.unwrap_or(false));
        assert!(!revisions.until_reached(8, Duration::from_millis(20)).await);
    }
}
