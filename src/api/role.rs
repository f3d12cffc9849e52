use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, MemberType};

/// A named set of permissions that can be bound at account or project scope.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "rolegate.dev",
    version = "v1alpha1",
    kind = "Role",
    namespaced,
    status = "RoleStatus",
    shortname = "rgrole",
    shortname = "rgr",
    category = "rolegate",
    derive = "PartialEq",
    printcolumn(name = "Display", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Scope", type_ = "string", json_path = ".spec.scope"),
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.account"),
    printcolumn(name = "Bound", type_ = "integer", json_path = ".status.boundCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(oldSelf.locked) || !oldSelf.locked || self == oldSelf").message("[R10] the role is locked: its spec never changes"),
    validation = Rule::new("!has(self.owner) || !self.owner || self.scope == 'Account'").message("[R6] an owner role must have scope Account"),
    validation = Rule::new("!has(self.default) || !self.default || self.scope == 'Account'").message("[R14] a default role must have scope Account"),
    validation = Rule::new("!has(self.owner) || !has(self.default) || !(self.owner && self.default)").message("[R14] the owner role cannot be a default role")
)]
pub struct RoleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Where the role may be bound.
    pub scope: RoleScope,
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Roles whose permissions this role also grants (R12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
    /// The account-owner role: exactly one binding per account (R1).
    #[serde(default)]
    pub owner: bool,
    /// Held implicitly by members that have no accepted binding (R14).
    #[serde(default)]
    pub default: bool,
    /// Built in: the spec never changes and the role cannot be deleted while bound (R10).
    #[serde(default)]
    pub locked: bool,
    /// At most one role of a group per member per scope (R5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusive_groups: Vec<String>,
    /// Who may hold the role (R7).
    #[serde(default = "default_member_types")]
    pub member_types: Vec<MemberType>,
    /// Makes the role private to one account (R8, R12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

fn default_member_types() -> Vec<MemberType> {
    vec![MemberType::User, MemberType::Service]
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RoleScope {
    Account,
    Project,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// Permissions after `includes`.
    #[serde(default)]
    pub effective_permissions: Vec<String>,
    /// Bindings that name this role.
    #[serde(default)]
    pub bound_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
