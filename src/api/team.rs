use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// A named set of members of one account. A binding that names the team grants its role to
/// every member the team lists (the hosting control panel's teams, the developer platform's
/// groups); binding a member directly is binding its personal team.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "rolegate.dev",
    version = "v1alpha1",
    kind = "Team",
    namespaced,
    status = "TeamStatus",
    shortname = "rgteam",
    shortname = "rgt",
    category = "rolegate",
    derive = "PartialEq",
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.account"),
    printcolumn(name = "Display", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Members", type_ = "integer", json_path = ".status.members"),
    printcolumn(name = "Bindings", type_ = "integer", json_path = ".status.bindings"),
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
pub struct TeamSpec {
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.account is immutable"))]
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Members of the same account (R8); a set, so a member is listed once.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub members: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamStatus {
    /// How many listed members resolve to Members of the team's account.
    #[serde(default)]
    pub members: u32,
    /// The listed members that resolve, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub resolved: Vec<String>,
    /// Bindings that name this team.
    #[serde(default)]
    pub bindings: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
