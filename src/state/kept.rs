//! What the controller keeps of each watched object besides its spec: the uid (an Event's object
//! reference), the generation (`observedGeneration`) and the status, compressed (see [`packed`]).
//! The spec is not kept twice: a reconcile takes it from the engine's index, which holds every
//! object's spec for the rules (and which the reconcile evaluates anyway).
//!
//! This takes the place of kube's reflector stores, which keep a whole `ObjectMeta` (360 bytes
//! before its strings) and a key of four more strings per object: at 10,000 accounts (160,000
//! objects) the stores alone took about 120 MiB. A typed status is several times its JSON too: a
//! Member's scoped role and permission maps and its sources take about 1.9 KB as Rust values and
//! about 550 bytes as JSON, about 100 compressed. A reconcile decodes the status again
//! (microseconds, next to the round trip of a status write).
//!
//! [`packed`]: super::packed

use std::sync::{Mutex, MutexGuard};

use foldhash::HashMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;
use smol_str::SmolStr;

use crate::api::{
    Account, AccountSpec, AccountStatus, Kind, KindOf, Member, MemberSpec, MemberStatus, Role,
    RoleBinding, RoleBindingSpec, RoleBindingStatus, RoleSpec, RoleStatus, Team, TeamSpec,
    TeamStatus,
};
use crate::engine::Index;

use super::packed::{Packed, Packer};

/// A kind whose objects come apart into metadata, spec and status, and go back together.
pub trait Storable:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + KindOf + Sized + Send + Sync + 'static
{
    type Spec;
    type Status: Serialize + DeserializeOwned;
    fn take_status(&mut self) -> Option<Self::Status>;
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
            fn take_status(&mut self) -> Option<$status> {
                self.status.take()
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

/// An object's uid: a UUID (what the API server assigns) as its 16 bytes, anything else as given.
enum Uid {
    Uuid(uuid::Uuid),
    Other(Box<str>),
}

impl Uid {
    fn new(uid: &str) -> Self {
        match uuid::Uuid::try_parse(uid) {
            // Only if it reads back the same (lower case, hyphenated).
            Ok(parsed) if parsed.hyphenated().to_string() == uid => Self::Uuid(parsed),
            _ => Self::Other(uid.into()),
        }
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uid::Uuid(uuid) => uuid.hyphenated().fmt(f),
            Uid::Other(uid) => f.write_str(uid),
        }
    }
}

/// One watched object as kept.
struct Record {
    uid: Option<Uid>,
    /// `metadata.generation` ([`NO_GENERATION`]: none; the API server starts at 1).
    generation: i64,
    /// The status as JSON, as the object carried it, compressed against the kind's dictionary.
    status: Option<Packed>,
    /// The list that last saw the object: a re-list drops what it did not see.
    seen: u32,
    /// A fingerprint of the status this controller last wrote (0: none), so that the watch event
    /// of its own write does not ask for another reconcile.
    written: u64,
}

const NO_GENERATION: i64 = i64::MIN;

/// A fingerprint of a status as JSON: equal statuses of one type serialize to equal bytes.
fn fingerprint(json: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(json).max(1)
}

/// One kind's records, by namespace and name.
#[derive(Default)]
struct Kept {
    namespaces: HashMap<SmolStr, HashMap<SmolStr, Record>>,
    /// Lists begun (the first list and every re-list after a watch could not resume).
    lists: u32,
}

/// The records of every kind, written by the watches and read by the reconciles. Like a reflector
/// store, a re-list replaces a kind's records; unlike one, it keeps nothing twice meanwhile.
#[derive(Default)]
pub struct Records {
    kinds: [Mutex<Kept>; Kind::ALL.len()],
}

impl Records {
    fn kind(&self, kind: Kind) -> Option<MutexGuard<'_, Kept>> {
        self.kinds[kind as usize].lock().ok()
    }

    /// A watch saw `object` (listed or changed): keeps its record, and takes its status out of it
    /// (only the record holds it; the index takes the rest). True if the status is the one this
    /// controller last wrote: the event is the echo of its own write.
    pub fn apply<K: Storable>(&self, object: &mut K) -> bool {
        let json = object
            .take_status()
            .and_then(|s| serde_json::to_vec(&s).ok());
        let printed = json.as_deref().map_or(0, fingerprint);
        let status = json.map(|json| K::packer().pack(json));
        let mut echo = false;
        let meta = object.meta();
        if let (Some(mut kept), Some(name)) = (self.kind(K::KIND), meta.name.as_deref()) {
            let seen = kept.lists;
            let mut record = Record {
                uid: meta.uid.as_deref().map(Uid::new),
                generation: meta.generation.unwrap_or(NO_GENERATION),
                status,
                seen,
                written: 0,
            };
            let namespace = crate::api::namespace_of(meta);
            let names = match kept.namespaces.get_mut(namespace.as_str()) {
                Some(names) => names,
                None => kept.namespaces.entry(namespace.into()).or_default(),
            };
            match names.get_mut(name) {
                Some(held) => {
                    record.written = held.written;
                    echo = printed != 0 && printed == held.written;
                    *held = record;
                }
                None => {
                    names.insert(name.into(), record);
                }
            }
        }
        echo
    }

    /// This controller wrote `status` to the object: the watch event that follows is its echo.
    pub fn wrote(&self, kind: Kind, namespace: &str, name: &str, status: &impl Serialize) {
        let Ok(json) = serde_json::to_vec(status) else {
            return;
        };
        if let Some(mut kept) = self.kind(kind)
            && let Some(record) = kept
                .namespaces
                .get_mut(namespace)
                .and_then(|names| names.get_mut(name))
        {
            record.written = fingerprint(&json);
        }
    }

    /// A watch saw an object deleted.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) {
        if let Some(mut kept) = self.kind(kind)
            && let Some(names) = kept.namespaces.get_mut(namespace)
        {
            names.remove(name);
            if names.is_empty() {
                kept.namespaces.remove(namespace);
            }
        }
    }

    /// A (re-)list of `kind` begins: what it does not list again is gone when it ends.
    pub fn listing(&self, kind: Kind) {
        if let Some(mut kept) = self.kind(kind) {
            kept.lists = kept.lists.wrapping_add(1);
        }
    }

    /// The list of `kind` ended: drops the records it did not see (deletions a dropped watch
    /// missed) and returns their (namespace, name).
    pub fn listed(&self, kind: Kind) -> Vec<(String, String)> {
        let Some(mut kept) = self.kind(kind) else {
            return Vec::new();
        };
        let lists = kept.lists;
        let mut gone = Vec::new();
        kept.namespaces.retain(|ns, names| {
            names.retain(|name, record| {
                let keep = record.seen == lists;
                if !keep {
                    gone.push((ns.to_string(), name.to_string()));
                }
                keep
            });
            !names.is_empty()
        });
        gone
    }

    /// The object as a reconcile reads it: the kept metadata, its spec in `index` and the decoded
    /// status; `None` while the index or the records do not hold it (the records move first, and
    /// the index's change asks for the reconcile again).
    pub fn object<K: Storable>(&self, index: &Index, namespace: &str, name: &str) -> Option<K> {
        let (metadata, status) = {
            let kept = self.kind(K::KIND)?;
            let record = kept.namespaces.get(namespace)?.get(name)?;
            let metadata = ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: record.uid.as_ref().map(Uid::to_string),
                generation: (record.generation != NO_GENERATION).then_some(record.generation),
                ..ObjectMeta::default()
            };
            (metadata, record.status.clone())
        };
        let spec = K::spec_in(index, namespace, name)?;
        let status = status.and_then(|packed| {
            let json = K::packer().unpack(&packed);
            json.as_deref()
                .and_then(|json| serde_json::from_slice(json).ok())
                .or_else(|| {
                    // Encoded above from the same type: cannot happen. Without a status the
                    // reconcile writes the whole status again, which is always safe.
                    tracing::warn!(kind = %K::KIND, "a kept status does not decode");
                    None
                })
        });
        Some(K::from_parts(metadata, spec, status))
    }

    /// How many objects of `kind` are kept.
    #[cfg(test)]
    fn len(&self, kind: Kind) -> usize {
        self.kind(kind)
            .map_or(0, |kept| kept.namespaces.values().map(HashMap::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_is_64_bytes() {
        // Kept for every object of the cluster, in tables that are alive twice while they grow.
        assert_eq!(std::mem::size_of::<Record>(), 64);
    }

    fn member(name: &str, status: serde_json::Value) -> Member {
        serde_json::from_value(json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": "Member",
            "metadata": {
                "name": name, "namespace": "team", "uid": "u-1", "resourceVersion": "7",
                "generation": 2, "labels": {"app": "x"}, "annotations": {"a": "b"},
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
            "spec": {"account": "acme", "type": "User"},
            "status": status,
        }))
        .expect("a member")
    }

    #[test]
    fn an_object_comes_back_with_its_status_the_metadata_reconciles_read_and_the_index_spec() {
        let member = member(
            "ann",
            json!({
                "roles": {"account": ["viewer"]},
                "permissions": {"account": ["account.view"], "projects": {"web": ["project.view"]}},
                "permissionsGeneration": 3,
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            }),
        );
        let records = Records::default();
        let mut watched = member.clone();
        records.apply(&mut watched);
        assert_eq!(
            watched.status, None,
            "the record holds the status, not the index"
        );
        let mut index = Index::new();
        assert!(
            records.object::<Member>(&index, "team", "ann").is_none(),
            "not in the index yet"
        );
        index.apply(watched.into());
        let back: Member = records.object(&index, "team", "ann").expect("held");
        assert_eq!(back.spec, member.spec);
        assert_eq!(back.status, member.status);
        let (m, kept) = (&member.metadata, &back.metadata);
        assert_eq!(
            (&kept.name, &kept.namespace, &kept.uid, kept.generation),
            (&m.name, &m.namespace, &m.uid, m.generation)
        );
        assert_eq!(
            (&kept.labels, &kept.annotations, &kept.managed_fields),
            (&None, &None, &None)
        );
        let mut bare = Member::new("bob", member.spec.clone());
        bare.metadata.namespace = Some("team".to_owned());
        records.apply(&mut bare.clone());
        index.apply(bare.into());
        let bare: Member = records.object(&index, "team", "bob").expect("held");
        assert_eq!(bare.status, None);
        records.delete(Kind::Member, "team", "bob");
        assert!(records.object::<Member>(&index, "team", "bob").is_none());
        assert!(
            records
                .object::<Member>(&index, "elsewhere", "ann")
                .is_none()
        );
    }

    #[test]
    fn the_watch_event_of_a_written_status_is_its_echo() {
        let records = Records::default();
        let ready = json!({"observedGeneration": 2, "permissionsGeneration": 1});
        assert!(
            !records.apply(&mut member("ann", json!(null))),
            "no status written yet"
        );
        let written: crate::api::MemberStatus =
            serde_json::from_value(ready.clone()).expect("a status");
        records.wrote(Kind::Member, "team", "ann", &written);
        assert!(records.apply(&mut member("ann", ready.clone())), "the echo");
        assert!(
            records.apply(&mut member("ann", ready.clone())),
            "a metadata-only change after it carries the same status"
        );
        let edited = json!({"observedGeneration": 2, "permissionsGeneration": 9});
        assert!(
            !records.apply(&mut member("ann", edited)),
            "someone else's status edit is no echo: the reconcile restores it"
        );
        assert!(!records.apply(&mut member("bob", ready)), "another object");
    }

    #[test]
    fn a_uid_comes_back_as_given() {
        for uid in [
            "0b1c7c2e-4a8f-4d3e-9f0a-6c2b1d4e5f60",
            "0B1C7C2E-4A8F-4D3E-9F0A-6C2B1D4E5F60",
            "0b1c7c2e4a8f4d3e9f0a6c2b1d4e5f60",
            "u-1",
            "",
        ] {
            assert_eq!(Uid::new(uid).to_string(), uid);
        }
        assert!(matches!(
            Uid::new("0b1c7c2e-4a8f-4d3e-9f0a-6c2b1d4e5f60"),
            Uid::Uuid(_)
        ));
    }

    #[test]
    fn a_relist_drops_what_it_did_not_see_and_names_it() {
        let records = Records::default();
        records.listing(Kind::Member);
        for name in ["ann", "bob", "carol"] {
            records.apply(&mut member(name, json!(null)));
        }
        assert_eq!(records.listed(Kind::Member), Vec::<(String, String)>::new());
        assert_eq!(records.len(Kind::Member), 3);
        // The watch drops; bob is deleted meanwhile; the re-list sees the others.
        records.listing(Kind::Member);
        for name in ["ann", "carol"] {
            records.apply(&mut member(name, json!(null)));
        }
        assert_eq!(
            records.listed(Kind::Member),
            vec![("team".to_owned(), "bob".to_owned())]
        );
        assert_eq!(records.len(Kind::Member), 2);
        assert_eq!(records.len(Kind::Account), 0, "kinds are kept apart");
        // A change after the list counts as seen by it.
        records.apply(&mut member("dan", json!(null)));
        records.listing(Kind::Member);
        assert_eq!(
            records.listed(Kind::Member).len(),
            3,
            "an empty re-list drops all"
        );
    }
}
