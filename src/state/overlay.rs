//! Objects this replica admitted that the watch has not delivered yet. Two conflicting requests
//! milliseconds apart must not both pass, so an admitted object is laid over the index until its
//! watch event lands. Pure: the caller passes the time, and applies what comes out to the index.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::api::ObjectRef;
use crate::engine::Entry;

/// How long an admitted object stays in the overlay waiting for its watch event.
pub const TTL: Duration = Duration::from_secs(30);

/// An admitted object laid over the index until its watch event arrives.
#[derive(Debug, Clone)]
struct Admitted {
    at: Instant,
    entry: Entry,
    /// What the watch last said of the object (None: absent), restored if the admitted version
    /// never arrives (a later webhook denied it, say).
    watched: Option<Entry>,
}

/// What the overlay makes of one watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// This replica admitted nothing for the object: the event goes to the index.
    NotAdmitted,
    /// The admitted version arrived: the index takes it, with the server's metadata.
    Landed,
    /// An older version (a status write, say): the admitted one stays over it until it lands.
    InFlight,
}

#[derive(Debug, Default)]
pub struct Overlay {
    admitted: HashMap<ObjectRef, Admitted>,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.admitted.is_empty()
    }

    pub fn len(&self) -> usize {
        self.admitted.len()
    }

    /// Whether an admission of `key` is waiting for its watch event.
    pub fn holds(&self, key: &ObjectRef) -> bool {
        self.admitted.contains_key(key)
    }

    /// Records an admitted object. `watched` is what the index holds of it now; a second
    /// admission before the first landed keeps what the watch said before the first.
    pub fn admit(&mut self, key: ObjectRef, entry: Entry, watched: Option<Entry>, now: Instant) {
        let watched = match self.admitted.remove(&key) {
            Some(earlier) => earlier.watched,
            None => watched,
        };
        self.admitted.insert(
            key,
            Admitted {
                at: now,
                entry,
                watched,
            },
        );
    }

    /// Matches a watch event against the overlay; `Some` entry is the object, `None` a deletion.
    pub fn settle(&mut self, key: &ObjectRef, entry: Option<&Entry>) -> Settled {
        let Some(admitted) = self.admitted.get_mut(key) else {
            return Settled::NotAdmitted;
        };
        match entry {
            Some(entry) if !admitted.entry.same_spec(entry) => {
                admitted.watched = Some(entry.clone());
                Settled::InFlight
            }
            _ => {
                self.admitted.remove(key);
                Settled::Landed
            }
        }
    }

    /// Whether any admission is older than `ttl` at `now`: a cheap check before the caller takes
    /// the index's write lock for [`Overlay::expire`].
    pub fn has_expired(&self, ttl: Duration, now: Instant) -> bool {
        self.admitted
            .values()
            .any(|a| now.saturating_duration_since(a.at) > ttl)
    }

    /// Removes admissions older than `ttl` and returns what the watch last said of each (None:
    /// the object is absent), for the caller to restore in the index.
    pub fn expire(&mut self, ttl: Duration, now: Instant) -> Vec<(ObjectRef, Option<Entry>)> {
        let keys: Vec<ObjectRef> = self
            .admitted
            .iter()
            .filter(|(_, a)| now.saturating_duration_since(a.at) > ttl)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.admitted.remove(&k).map(|a| (k, a.watched)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Kind, Member, Object};
    use serde_json::json;

    fn member(display: &str) -> Entry {
        let m: Member = serde_json::from_value(json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": "Member",
            "metadata": {"name": "ann", "namespace": "team"},
            "spec": {"account": "acme", "type": "User", "displayName": display},
        }))
        .expect("a valid member");
        Entry::from(Object::from(m))
    }

    fn key() -> ObjectRef {
        ObjectRef::new(Kind::Member, "team", "ann")
    }

    #[test]
    fn an_event_for_an_object_never_admitted_goes_to_the_index() {
        let mut overlay = Overlay::default();
        assert_eq!(
            overlay.settle(&key(), Some(&member("Ann"))),
            Settled::NotAdmitted
        );
    }

    #[test]
    fn an_older_version_keeps_the_admission_and_the_admitted_one_lands() {
        let mut overlay = Overlay::default();
        let t0 = Instant::now();
        overlay.admit(key(), member("Ann Lee"), Some(member("Ann")), t0);
        assert_eq!(
            overlay.settle(&key(), Some(&member("Ann"))),
            Settled::InFlight
        );
        assert_eq!(overlay.len(), 1);
        assert_eq!(
            overlay.settle(&key(), Some(&member("Ann Lee"))),
            Settled::Landed
        );
        assert!(overlay.is_empty());
    }

    #[test]
    fn a_deletion_settles_the_admission() {
        let mut overlay = Overlay::default();
        overlay.admit(key(), member("Ann Lee"), None, Instant::now());
        assert_eq!(overlay.settle(&key(), None), Settled::Landed);
        assert!(overlay.is_empty());
    }

    #[test]
    fn expiry_restores_what_the_watch_said_last_not_first() {
        let mut overlay = Overlay::default();
        let t0 = Instant::now();
        overlay.admit(key(), member("Ann Lee"), Some(member("Ann")), t0);
        // A second admission keeps what the watch said before the first.
        overlay.admit(key(), member("Ann B"), Some(member("Ann Lee")), t0);
        // Someone else's update lands instead.
        overlay.settle(&key(), Some(&member("Annie")));
        assert!(!overlay.has_expired(TTL, t0 + TTL));
        assert!(overlay.expire(TTL, t0 + TTL).is_empty());
        let later = t0 + TTL + Duration::from_millis(1);
        assert!(overlay.has_expired(TTL, later));
        let restored = overlay.expire(TTL, later);
        assert_eq!(restored, vec![(key(), Some(member("Annie")))]);
        assert!(overlay.is_empty());
    }

    #[test]
    fn an_admitted_create_that_never_lands_expires_to_absent() {
        let mut overlay = Overlay::default();
        let t0 = Instant::now();
        overlay.admit(key(), member("Ann"), None, t0);
        assert_eq!(
            overlay.expire(Duration::ZERO, t0 + Duration::from_millis(1)),
            vec![(key(), None)]
        );
    }
}
