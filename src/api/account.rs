use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// A customer account: the unit that owns members, bindings and projects.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "rolegate.dev",
    version = "v1alpha1",
    kind = "Account",
    namespaced,
    status = "AccountStatus",
    shortname = "rgaccount",
    shortname = "rga",
    category = "rolegate",
    derive = "PartialEq",
    printcolumn(name = "Display", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Owner", type_ = "string", json_path = ".status.owner"),
    printcolumn(name = "Members", type_ = "integer", json_path = ".status.members"),
    printcolumn(name = "Teams", type_ = "integer", json_path = ".status.teams"),
    printcolumn(name = "Bindings", type_ = "integer", json_path = ".status.bindings"),
    printcolumn(name = "Conflicts", type_ = "integer", json_path = ".status.conflicts"),
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
pub struct AccountSpec {
    /// Human-readable name shown to people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The project-level scopes of the account: projects, sites, hostings or workspaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub projects: Vec<Project>,
    /// Who may become the owner after the first owner binding (R4).
    #[serde(default)]
    pub ownership: Ownership,
    /// Whether a binding that grants nothing new is a warning or a denial (R9).
    #[serde(default)]
    pub redundant_bindings: RedundantPolicy,
    /// The permission that lets a member manage this account's members and bindings (R13).
    /// Without it, members cannot delegate: only Kubernetes RBAC decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_admin_permission: Option<String>,
    /// The bind right (R13), like RBAC's `bind` verb: holding it at a scope lets a member grant
    /// any non-owner role there without holding its permissions; `<bindPermission>:<role>` lets
    /// it grant that one role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_permission: Option<String>,
}

/// A project-level scope of an account.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Unique within the account; bindings name it in `spec.project`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The rules for moving the owner binding to another member (R4).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ownership {
    #[serde(default)]
    pub transfer: Transfer,
    /// A new owner must already hold this account-level role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor_role: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Transfer {
    #[default]
    Allowed,
    Forbidden,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RedundantPolicy {
    #[default]
    Warn,
    Deny,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatus {
    /// The member bound by the accepted owner binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub members: u32,
    #[serde(default)]
    pub teams: u32,
    #[serde(default)]
    pub bindings: u32,
    /// Bindings of this account that are not accepted.
    #[serde(default)]
    pub conflicts: u32,
    /// Not accepted bindings by rule id, for dashboards.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conflicts_by_rule: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
