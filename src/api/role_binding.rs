use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// Grants one role to one member of an account, at account scope or on one project.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "rolegate.dev",
    version = "v1alpha1",
    kind = "RoleBinding",
    namespaced,
    status = "RoleBindingStatus",
    shortname = "rgbinding",
    shortname = "rgrb",
    category = "rolegate",
    derive = "PartialEq",
    // The owner binding is named `<account>-owner` (R1), so only it may change member (R4).
    validation = Rule::new("self.metadata.name == self.spec.account + '-owner' || self.spec.member == oldSelf.spec.member").message("[R11] spec.member is immutable"),
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.account"),
    printcolumn(name = "Member", type_ = "string", json_path = ".spec.member"),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.role"),
    printcolumn(name = "Project", type_ = "string", json_path = ".spec.project"),
    printcolumn(name = "Accepted", type_ = "string", json_path = ".status.conditions[?(@.type==\"Accepted\")].status"),
    printcolumn(name = "Reason", type_ = "string", priority = 1, json_path = ".status.conditions[?(@.type==\"Accepted\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.project) == has(oldSelf.project)").message("[R11] spec.project is immutable"))]
pub struct RoleBindingSpec {
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.account is immutable"))]
    pub account: String,
    pub member: String,
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.role is immutable"))]
    pub role: String,
    /// Required for a Project role, forbidden for an Account role (R6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.project is immutable"))]
    pub project: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleBindingStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
