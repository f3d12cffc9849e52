use std::fmt;

use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::{Account, Member, Role, RoleBinding, Team};

/// The five kinds, for routing and for naming objects in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Account,
    Member,
    Team,
    Role,
    RoleBinding,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Account,
        Kind::Member,
        Kind::Team,
        Kind::Role,
        Kind::RoleBinding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "Account",
            Kind::Member => "Member",
            Kind::Team => "Team",
            Kind::Role => "Role",
            Kind::RoleBinding => "RoleBinding",
        }
    }

    pub fn from_kind(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The plural resource name, as in AdmissionReview `resource.resource`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Account => "accounts",
            Kind::Member => "members",
            Kind::Team => "teams",
            Kind::Role => "roles",
            Kind::RoleBinding => "rolebindings",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object's namespace, `default` where it has none: how every adapter files objects.
pub fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

/// Names one object: what diagnostics, conditions and denials point at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Any one of the five kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Account(Account),
    Member(Member),
    Team(Team),
    Role(Role),
    RoleBinding(RoleBinding),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Account(_) => Kind::Account,
            Object::Member(_) => Kind::Member,
            Object::Team(_) => Kind::Team,
            Object::Role(_) => Kind::Role,
            Object::RoleBinding(_) => Kind::RoleBinding,
        }
    }

    pub fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Object::Account(o) => &o.metadata,
            Object::Member(o) => &o.metadata,
            Object::Team(o) => &o.metadata,
            Object::Role(o) => &o.metadata,
            Object::RoleBinding(o) => &o.metadata,
        }
    }

    pub fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Object::Account(o) => &mut o.metadata,
            Object::Member(o) => &mut o.metadata,
            Object::Team(o) => &mut o.metadata,
            Object::Role(o) => &mut o.metadata,
            Object::RoleBinding(o) => &mut o.metadata,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Object::Account(o) => o.name_any(),
            Object::Member(o) => o.name_any(),
            Object::Team(o) => o.name_any(),
            Object::Role(o) => o.name_any(),
            Object::RoleBinding(o) => o.name_any(),
        }
    }

    /// The namespace, with `default` where a manifest leaves it out (as `kubectl apply` does).
    pub fn namespace(&self) -> String {
        namespace_of(self.meta())
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(self.kind(), self.namespace(), self.name())
    }

    /// The account this object belongs to, where it names one.
    pub fn account(&self) -> Option<&str> {
        match self {
            Object::Account(o) => o.metadata.name.as_deref(),
            Object::Member(o) => Some(&o.spec.account),
            Object::Team(o) => Some(&o.spec.account),
            Object::Role(o) => o.spec.account.as_deref(),
            Object::RoleBinding(o) => Some(&o.spec.account),
        }
    }

    /// The JSON form, as the API server and the CEL rules see it.
    pub fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            Object::Account(o) => serde_json::to_value(o),
            Object::Member(o) => serde_json::to_value(o),
            Object::Team(o) => serde_json::to_value(o),
            Object::Role(o) => serde_json::to_value(o),
            Object::RoleBinding(o) => serde_json::to_value(o),
        }
    }

    /// What the CRDs' CEL rules read: `metadata.name` and `spec` (a test holds every rule to
    /// that). Labels, annotations, managed fields and status would only be converted for nothing.
    pub fn rule_input(&self) -> serde_json::Result<serde_json::Value> {
        let spec = match self {
            Object::Account(o) => serde_json::to_value(&o.spec),
            Object::Member(o) => serde_json::to_value(&o.spec),
            Object::Team(o) => serde_json::to_value(&o.spec),
            Object::Role(o) => serde_json::to_value(&o.spec),
            Object::RoleBinding(o) => serde_json::to_value(&o.spec),
        }?;
        Ok(serde_json::json!({
            "metadata": {"name": self.meta().name},
            "spec": spec,
        }))
    }

    /// Parses a JSON object of a known kind; `Ok(None)` when the kind is not ours.
    pub fn from_json(value: serde_json::Value) -> serde_json::Result<Option<Object>> {
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .and_then(Kind::from_kind);
        Ok(Some(match kind {
            None => return Ok(None),
            Some(Kind::Account) => Object::Account(serde_json::from_value(value)?),
            Some(Kind::Member) => Object::Member(serde_json::from_value(value)?),
            Some(Kind::Team) => Object::Team(serde_json::from_value(value)?),
            Some(Kind::Role) => Object::Role(serde_json::from_value(value)?),
            Some(Kind::RoleBinding) => Object::RoleBinding(serde_json::from_value(value)?),
        }))
    }
}

/// The [`Kind`] of each typed resource, for generic adapters (reflectors, reconcilers).
pub trait KindOf: Into<Object> {
    const KIND: Kind;
}

impl KindOf for Account {
    const KIND: Kind = Kind::Account;
}
impl KindOf for Member {
    const KIND: Kind = Kind::Member;
}
impl KindOf for Team {
    const KIND: Kind = Kind::Team;
}
impl KindOf for Role {
    const KIND: Kind = Kind::Role;
}
impl KindOf for RoleBinding {
    const KIND: Kind = Kind::RoleBinding;
}

impl From<Account> for Object {
    fn from(o: Account) -> Self {
        Object::Account(o)
    }
}
impl From<Member> for Object {
    fn from(o: Member) -> Self {
        Object::Member(o)
    }
}
impl From<Team> for Object {
    fn from(o: Team) -> Self {
        Object::Team(o)
    }
}
impl From<Role> for Object {
    fn from(o: Role) -> Self {
        Object::Role(o)
    }
}
impl From<RoleBinding> for Object {
    fn from(o: RoleBinding) -> Self {
        Object::RoleBinding(o)
    }
}
