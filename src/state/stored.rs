//! What the reflector stores keep of each object for the reconciles: the metadata a reconcile
//! reads (name, namespace, uid, resourceVersion, generation) and the status as compact JSON. The
//! spec is not kept twice: a reconcile takes it from the engine's index, which holds every object's
//! spec for the rules (and which the reconcile evaluates anyway).
//!
//! A typed status is several times its JSON: a Member's scoped role and permission maps and its
//! sources take about 1.9 KB as Rust values and about 550 bytes as JSON. A reconcile decodes the
//! status again (microseconds, next to the round trip of a status write).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::api::{
    Account, AccountSpec, AccountStatus, Member, MemberSpec, MemberStatus, Role, RoleBinding,
    RoleBindingSpec, RoleBindingStatus, RoleSpec, RoleStatus, Team, TeamSpec, TeamStatus,
};
use crate::engine::Index;

use super::packed::{Packed, Packer};

/// A kind whose objects come apart into metadata, spec and status, and go back together.
pub trait Storable:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Sized + Send + Sync + 'static
{
    type Spec;
    type Status: Serialize + DeserializeOwned;
    fn into_parts(self) -> (ObjectMeta, Option<Self::Status>);
    fn from_parts(metadata: ObjectMeta, spec: Self::Spec, status: Option<Self::Status>) -> Self;
    /// The spec the index holds for `name` in `namespace`.
    fn spec_in(index: &Index, namespace: &str, name: &str) -> Option<Self::Spec>;
    /// The kind's status dictionary (one per kind, for the process's life).
    fn packer() -> &'static Packer;
}

macro_rules! storable {
    ($($kind:ty: $spec:ty, $status:ty, $lookup:ident;)*) => {$(
        impl Storable for $kind {
            type Spec = $spec;
            type Status = $status;
            fn into_parts(self) -> (ObjectMeta, Option<$status>) {
                (self.metadata, self.status)
            }
            fn from_parts(metadata: ObjectMeta, spec: $spec, status: Option<$status>) -> Self {
                Self { metadata, spec, status }
            }
            fn spec_in(index: &Index, namespace: &str, name: &str) -> Option<$spec> {
                Some(index.namespace(namespace)?.$lookup(name)?.spec.clone())
            }
            fn packer() -> &'static Packer {
                static PACKER: Packer = Packer::new();
                &PACKER
            }
        }
    )*};
}

storable! {
    Account: AccountSpec, AccountStatus, account;
    Member: MemberSpec, MemberStatus, member;
    Team: TeamSpec, TeamStatus, team;
    Role: RoleSpec, RoleStatus, role;
    RoleBinding: RoleBindingSpec, RoleBindingStatus, binding;
}

/// One object as a reflector store keeps it for the controller.
pub struct Stored<K: Storable> {
    metadata: ObjectMeta,
    /// The status as JSON, as the object carried it, compressed against the kind's dictionary.
    status: Option<Packed>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Storable> Stored<K> {
    pub fn new(object: K) -> Self {
        let (meta, status) = object.into_parts();
        // What a reconcile reads: the name and namespace, the uid and resourceVersion (an Event's
        // object reference) and the generation (`observedGeneration`).
        let metadata = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            generation: meta.generation,
            ..ObjectMeta::default()
        };
        let status = status
            .and_then(|s| serde_json::to_vec(&s).ok())
            .map(|json| K::packer().pack(json));
        Self {
            metadata,
            status,
            kind: PhantomData,
        }
    }

    /// The object as a reconcile reads it: the kept metadata, its spec in `index` and the decoded
    /// status; `None` while the index does not hold it (the store moves first, and the index's
    /// change asks for the reconcile again).
    pub fn object(&self, index: &Index) -> Option<K> {
        let namespace = crate::api::namespace_of(&self.metadata);
        let spec = K::spec_in(index, &namespace, self.metadata.name.as_deref()?)?;
        let status = self.status.as_ref().and_then(|packed| {
            let json = K::packer().unpack(packed);
            json.as_deref()
                .and_then(|json| serde_json::from_slice(json).ok())
                .or_else(|| {
                    // Encoded above from the same type: cannot happen. Without a status the
                    // reconcile writes the whole status again, which is always safe.
                    tracing::warn!(kind = %K::kind(&()), "a kept status does not decode");
                    None
                })
        });
        Some(K::from_parts(self.metadata.clone(), spec, status))
    }
}

impl<K: Storable> Clone for Stored<K> {
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            status: self.status.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Storable> fmt::Debug for Stored<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stored")
            .field("kind", &K::kind(&()))
            .field("metadata", &self.metadata)
            .field(
                "status",
                &self
                    .status
                    .as_ref()
                    .and_then(|p| K::packer().unpack(p))
                    .map(|json| String::from_utf8_lossy(&json).into_owned()),
            )
            .finish()
    }
}

impl<K: Storable> Resource for Stored<K> {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// kube's `Controller` asks for it; the stores are filled from watch events, never decoded.
impl<'de, K: Storable + DeserializeOwned> Deserialize<'de> for Stored<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_comes_back_with_its_status_the_metadata_reconciles_read_and_the_index_spec() {
        let member: Member = serde_json::from_value(json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": "Member",
            "metadata": {
                "name": "ann", "namespace": "team", "uid": "u-1", "resourceVersion": "7",
                "generation": 2, "labels": {"app": "x"}, "annotations": {"a": "b"},
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
            "spec": {"account": "acme", "type": "User"},
            "status": {
                "roles": {"account": ["viewer"]},
                "permissions": {"account": ["account.view"], "projects": {"web": ["project.view"]}},
                "permissionsGeneration": 3,
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            },
        }))
        .expect("a member");
        let kept = Stored::new(member.clone());
        assert!(kept.object(&Index::new()).is_none(), "not in the index yet");
        let mut index = Index::new();
        index.apply(member.clone().into());
        let back: Member = kept.object(&index).expect("the index holds it");
        assert_eq!(back.spec, member.spec);
        assert_eq!(back.status, member.status);
        let (m, kept) = (&member.metadata, &back.metadata);
        assert_eq!(
            (&kept.name, &kept.namespace, &kept.uid),
            (&m.name, &m.namespace, &m.uid)
        );
        assert_eq!(
            (&kept.resource_version, kept.generation),
            (&m.resource_version, m.generation)
        );
        assert_eq!(
            (&kept.labels, &kept.annotations, &kept.managed_fields),
            (&None, &None, &None)
        );
        let mut bare = Member::new("bob", member.spec.clone());
        bare.metadata.namespace = Some("team".to_owned());
        index.apply(bare.clone().into());
        let bare: Member = Stored::new(bare).object(&index).expect("held");
        assert_eq!(bare.status, None);
    }
}
