use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Condition;

/// Grants one role to one member, or to every member of one team, of an account, at account
/// scope or on one project.
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
    validation = Rule::new("self.metadata.name == self.spec.account + '-owner' || (has(self.spec.member) == has(oldSelf.spec.member) && (!has(self.spec.member) || self.spec.member == oldSelf.spec.member))").message("[R11] spec.member is immutable"),
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.account"),
    printcolumn(name = "Member", type_ = "string", json_path = ".spec.member"),
    printcolumn(name = "Team", type_ = "string", json_path = ".spec.team"),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.role"),
    printcolumn(name = "Project", type_ = "string", json_path = ".spec.project"),
    printcolumn(name = "Accepted", type_ = "string", json_path = ".status.conditions[?(@.type==\"Accepted\")].status"),
    printcolumn(name = "Active", type_ = "string", json_path = ".status.conditions[?(@.type==\"Active\")].status"),
    printcolumn(name = "Until", type_ = "date", priority = 1, json_path = ".spec.validUntil"),
    printcolumn(name = "Reason", type_ = "string", priority = 1, json_path = ".status.conditions[?(@.type==\"Accepted\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.project) == has(oldSelf.project)").message("[R11] spec.project is immutable"),
    validation = Rule::new("has(self.team) == has(oldSelf.team)").message("[R11] spec.team is immutable"),
    validation = Rule::new("has(self.member) != has(self.team)").message("[R17] a binding names exactly one subject: spec.member or spec.team"),
    validation = Rule::new("!has(self.validFrom) || !has(self.validUntil) || self.validFrom < self.validUntil").message("[R18] spec.validFrom must be before spec.validUntil")
)]
pub struct RoleBindingSpec {
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.account is immutable"))]
    #[schemars(with = "String")]
    pub account: SmolStr,
    /// The member it grants the role to: exactly one of `member` and `team` (R17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub member: Option<SmolStr>,
    /// The team whose every member receives the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.team is immutable"))]
    #[schemars(with = "Option<String>")]
    pub team: Option<SmolStr>,
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.role is immutable"))]
    #[schemars(with = "String")]
    pub role: SmolStr,
    /// Required for a Project role, forbidden for an Account role (R6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("[R11] spec.project is immutable"))]
    #[schemars(with = "Option<String>")]
    pub project: Option<SmolStr>,
    /// Start of the time window (R18, inclusive): before it the binding grants nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Time>,
    /// End of the time window (R18, exclusive): from then on the binding grants nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Time>,
}

/// The subject a binding names, when it names exactly one (R17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    Member(&'a str),
    Team(&'a str),
}

impl RoleBindingSpec {
    /// The one subject, or `None` when the binding names none or both (R17).
    pub fn subject(&self) -> Option<Subject<'_>> {
        match (self.member.as_deref(), self.team.as_deref()) {
            (Some(m), None) => Some(Subject::Member(m)),
            (None, Some(t)) => Some(Subject::Team(t)),
            _ => None,
        }
    }

    /// The member a direct binding names.
    pub fn member_name(&self) -> Option<&str> {
        match self.subject() {
            Some(Subject::Member(m)) => Some(m),
            _ => None,
        }
    }

    /// The team a team binding names.
    pub fn team_name(&self) -> Option<&str> {
        match self.subject() {
            Some(Subject::Team(t)) => Some(t),
            _ => None,
        }
    }
}

/// A member a team binding does not reach, and the rule that keeps the grant from it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnreachedMember {
    pub member: String,
    /// The rule id (`R5`).
    pub rule: String,
    /// The CamelCase condition reason.
    pub reason: String,
    pub message: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleBindingStatus {
    /// For a team binding: members of the team it grants nothing to, with the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["member"]))]
    pub unreached: Vec<UnreachedMember>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
