//! What the engine keeps of an object: its name, its age and its spec. The index holds every
//! object of the cluster, and a typed object is mostly what no rule reads: `ObjectMeta` alone is
//! 360 bytes of empty options before its strings, status and managed fields come on top.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{AccountSpec, Kind, MemberSpec, Object, RoleBindingSpec, RoleSpec, TeamSpec};

/// The metadata the rules read, in 40 bytes: the index holds one per object of the cluster, and
/// two `Option<Time>`s alone take 48.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    /// Inline up to 23 bytes (see the index's note on memory).
    pub name: Option<smol_str::SmolStr>,
    /// `creationTimestamp` in nanoseconds since the epoch ([`NO_TIME`]: none), saturating
    /// outside 1677-2262; read it with [`Meta::created`]. Age order decides conflicts (older
    /// wins).
    created: i64,
    /// It has a `deletionTimestamp`: an account being deleted may lose its owner (R3).
    pub deleting: bool,
}

/// [`Meta::created`] of an object without a creationTimestamp.
const NO_TIME: i64 = i64::MIN;

impl Default for Meta {
    fn default() -> Self {
        Self {
            name: None,
            created: NO_TIME,
            deleting: false,
        }
    }
}

impl Meta {
    /// When the object was created, in nanoseconds since the epoch: what age order compares.
    pub fn created(&self) -> Option<i64> {
        (self.created != NO_TIME).then_some(self.created)
    }

    /// The creationTimestamp, as the object carried it.
    pub fn creation_timestamp(&self) -> Option<Time> {
        let nanos = self.created()?;
        k8s_openapi::jiff::Timestamp::from_nanosecond(i128::from(nanos))
            .ok()
            .map(Time)
    }

    /// Sets the creationTimestamp.
    pub fn set_created(&mut self, at: Option<&Time>) {
        self.created = at.map_or(NO_TIME, |t| {
            let nanos = t.0.as_nanosecond();
            i64::try_from(nanos).unwrap_or(if nanos < 0 { NO_TIME + 1 } else { i64::MAX })
        });
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Slim<S> {
    pub metadata: Meta,
    pub spec: S,
}

pub type Account = Slim<AccountSpec>;
pub type Member = Slim<MemberSpec>;
pub type Team = Slim<TeamSpec>;
pub type Role = Slim<RoleSpec>;
pub type RoleBinding = Slim<RoleBindingSpec>;

/// One slim object of any kind, as filed in the index.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Account(Account),
    Member(Member),
    Team(Team),
    Role(Role),
    RoleBinding(RoleBinding),
}

impl Entry {
    pub fn kind(&self) -> Kind {
        match self {
            Entry::Account(_) => Kind::Account,
            Entry::Member(_) => Kind::Member,
            Entry::Team(_) => Kind::Team,
            Entry::Role(_) => Kind::Role,
            Entry::RoleBinding(_) => Kind::RoleBinding,
        }
    }

    /// The same object with the same spec, whatever the metadata says: how an admitted object is
    /// recognised when its watch event arrives (the API server fills in metadata on the way).
    pub fn same_spec(&self, other: &Entry) -> bool {
        self.name() == other.name()
            && match (self, other) {
                (Entry::Account(a), Entry::Account(b)) => a.spec == b.spec,
                (Entry::Member(a), Entry::Member(b)) => a.spec == b.spec,
                (Entry::Team(a), Entry::Team(b)) => a.spec == b.spec,
                (Entry::Role(a), Entry::Role(b)) => a.spec == b.spec,
                (Entry::RoleBinding(a), Entry::RoleBinding(b)) => a.spec == b.spec,
                _ => false,
            }
    }

    pub fn metadata_mut(&mut self) -> &mut Meta {
        match self {
            Entry::Account(o) => &mut o.metadata,
            Entry::Member(o) => &mut o.metadata,
            Entry::Team(o) => &mut o.metadata,
            Entry::Role(o) => &mut o.metadata,
            Entry::RoleBinding(o) => &mut o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        let meta = match self {
            Entry::Account(o) => &o.metadata,
            Entry::Member(o) => &o.metadata,
            Entry::Team(o) => &o.metadata,
            Entry::Role(o) => &o.metadata,
            Entry::RoleBinding(o) => &o.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }
}

fn slim<S>(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, spec: S) -> Slim<S> {
    let mut metadata = Meta {
        name: m.name.as_deref().map(Into::into),
        deleting: m.deletion_timestamp.is_some(),
        ..Meta::default()
    };
    metadata.set_created(m.creation_timestamp.as_ref());
    Slim { metadata, spec }
}

/// For admission: the object under review, copied without its status and managed fields.
impl From<&Object> for Entry {
    fn from(object: &Object) -> Self {
        match object {
            Object::Account(o) => Entry::Account(slim(&o.metadata, o.spec.clone())),
            Object::Member(o) => Entry::Member(slim(&o.metadata, o.spec.clone())),
            Object::Team(o) => Entry::Team(slim(&o.metadata, o.spec.clone())),
            Object::Role(o) => Entry::Role(slim(&o.metadata, o.spec.clone())),
            Object::RoleBinding(o) => Entry::RoleBinding(slim(&o.metadata, o.spec.clone())),
        }
    }
}

impl From<Object> for Entry {
    fn from(object: Object) -> Self {
        match object {
            Object::Account(o) => Entry::Account(slim(&o.metadata, o.spec)),
            Object::Member(o) => Entry::Member(slim(&o.metadata, o.spec)),
            Object::Team(o) => Entry::Team(slim(&o.metadata, o.spec)),
            Object::Role(o) => Entry::Role(slim(&o.metadata, o.spec)),
            Object::RoleBinding(o) => Entry::RoleBinding(slim(&o.metadata, o.spec)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(s: &str) -> Time {
        Time(s.parse::<Timestamp>().expect("timestamp"))
    }

    #[test]
    fn creation_times_keep_their_order_to_the_nanosecond_and_none_is_none() {
        let mut meta = Meta::default();
        assert_eq!(meta.created(), None);
        meta.set_created(Some(&at("2026-01-01T00:00:00.000000001Z")));
        let later = meta.created();
        meta.set_created(Some(&at("2026-01-01T00:00:00Z")));
        assert!(meta.created() < later && meta.created().is_some());
        let t = at("2026-05-04T03:02:01.5Z");
        meta.set_created(Some(&t));
        assert_eq!(meta.creation_timestamp(), Some(t), "read back as set");
        meta.set_created(Some(&at("1970-01-01T00:00:00Z")));
        assert_eq!(meta.created(), Some(0), "the epoch is a time, not none");
        meta.set_created(Some(&at("1600-01-01T00:00:00Z")));
        assert!(
            meta.created().is_some(),
            "before 1677 saturates, still a time"
        );
        meta.set_created(None);
        assert_eq!(meta.created(), None);
        assert_eq!(std::mem::size_of::<Meta>(), 40);
    }
}
