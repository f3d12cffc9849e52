//! The five rolegate custom resources, in group `rolegate.dev`, version `v1alpha1`.
//!
//! Types only: the rules that judge them live in [`crate::engine`]. CEL rules that a single object
//! can check on its own (R10, R11 and the role shape) are part of the schema, so the API server
//! enforces them even when the webhook is down.

// kube's `printcolumn(...)` attributes repeat keys by design.
#![allow(clippy::duplicated_attributes)]

mod account;
mod conditions;
mod member;
mod object;
mod role;
mod role_binding;
mod team;

pub use account::{
    Account, AccountSpec, AccountStatus, Ownership, Project, RedundantPolicy, Transfer,
};
pub use conditions::{ConditionStatus, ConditionType, conditions_equal, set_condition};
pub use member::{
    Member, MemberSpec, MemberStatus, MemberType, RefusedGrant, RoleSource, ScopedNames,
};
pub use object::{Kind, KindOf, Object, ObjectRef, namespace_of};
pub use role::{Role, RoleScope, RoleSpec, RoleStatus};
pub use role_binding::{RoleBinding, RoleBindingSpec, RoleBindingStatus, Subject, UnreachedMember};
pub use team::{Team, TeamSpec, TeamStatus};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The API group of every rolegate kind.
pub const GROUP: &str = "rolegate.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "rolegate.dev/v1alpha1";

/// All five CRDs, in a stable order (the order `rolegate crds` prints them).
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![
        Account::crd(),
        Member::crd(),
        Team::crd(),
        Role::crd(),
        RoleBinding::crd(),
    ]
}

/// Each CRD as `(file name, YAML)`: what `rolegate crds --dir` writes and the drift test compares.
pub fn crd_files() -> Vec<(String, String)> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            // A derived CRD is plain data: serializing it cannot fail.
            (
                format!("{name}.yaml"),
                yaml_serde::to_string(&crd).unwrap_or_default(),
            )
        })
        .collect()
}
