use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::Condition;

/// A person, service or notification recipient inside one account.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "rolegate.dev",
    version = "v1alpha1",
    kind = "Member",
    namespaced,
    status = "MemberStatus",
    shortname = "rgmember",
    shortname = "rgm",
    category = "rolegate",
    derive = "PartialEq",
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.account"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Email", type_ = "string", json_path = ".spec.email"),
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
pub struct MemberSpec {
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.account is immutable"))]
    #[schemars(with = "String")]
    pub account: SmolStr,
    /// Fixed at creation: what kind of principal this is.
    #[serde(default, rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.type is immutable"))]
    pub member_type: MemberType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The Kubernetes user name this member authenticates as (R13 delegation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

#[derive(
    Deserialize,
    Serialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
pub enum MemberType {
    /// A person with a control-panel login.
    #[default]
    User,
    /// A machine identity for APIs and automation.
    Service,
    /// No login: only receives notifications.
    Subscriber,
}

impl std::fmt::Display for MemberType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::User => "User",
            Self::Service => "Service",
            Self::Subscriber => "Subscriber",
        })
    }
}

/// Names per scope. In a Member's status `account` holds on the account and on every project (R15,
/// stated once) and `projects.<p>` lists only what project p adds: effective on p is
/// `account ∪ projects[p]`, so the status grows with the member's own grants, never with the
/// account's project count.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopedNames {
    #[serde(default)]
    pub account: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub projects: BTreeMap<String, Vec<String>>,
}

/// Where one role of the member comes from: the binding, and the team if it is a team binding.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleSource {
    pub role: String,
    /// The project it is bound on; absent at account scope (which reaches every project, R15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub binding: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// A grant that reaches the member but gives it nothing, and the rule that keeps it away.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedGrant {
    #[serde(flatten)]
    pub source: RoleSource,
    pub rule: String,
    pub reason: String,
    pub message: String,
}

/// Effective access, after includes, default roles (R14) and implicit access (R15).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Roles held: `account` on the account and every project, `projects.<p>` what p adds.
    #[serde(default)]
    pub roles: ScopedNames,
    /// Permissions held: `account` on the account and every project, `projects.<p>` what p adds
    /// (effective on p: `account ∪ projects[p]`).
    #[serde(default)]
    pub permissions: ScopedNames,
    /// Where each role comes from, per scope: the binding, and the team if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<RoleSource>,
    /// Grants that reach the member (directly or through a team) but give it nothing, with the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedGrant>,
    /// Rises whenever effective permissions change, so sessions know to re-authenticate.
    #[serde(default)]
    pub permissions_generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
