//! What the engine keeps of an object: its name, its age and its spec. The index holds every
//! object of the cluster, and a typed object is mostly what no rule reads: `ObjectMeta` alone is
//! 360 bytes of empty options before its strings, status and managed fields come on top.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{AccountSpec, Kind, MemberSpec, Object, RoleBindingSpec, RoleSpec, TeamSpec};

/// The metadata the rules read. The field names match `ObjectMeta`'s, so rule code reads the same
/// on a slim object as on a full one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// Inline up to 23 bytes (see the index's note on memory).
    pub name: Option<smol_str::SmolStr>,
    /// Age order decides conflicts (older wins).
    pub creation_timestamp: Option<Time>,
    /// An account being deleted may lose its owner (R3).
    pub deletion_timestamp: Option<Time>,
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
    let metadata = Meta {
        name: m.name.as_deref().map(Into::into),
        creation_timestamp: m.creation_timestamp.clone(),
        deletion_timestamp: m.deletion_timestamp.clone(),
    };
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
