//! The decision API's questions and answers as JSON, answered over the shared state: no HTTP and
//! no API server here, so the property tests ask exactly what the HTTP endpoints answer. The
//! freshness wait and the caller's authorization happen before, in `http.rs`.

use serde::{Deserialize, Serialize};

use crate::engine::decide::{self, Subject, Via};
use crate::engine::explain;
use crate::engine::{AccountKey, Timestamp};
use crate::explain::{Explained, WhoCan};
use crate::state::Shared;

/// The most checks one `check:batch` request may hold (SpiceDB's default for
/// CheckBulkPermissions is 1,000; an answer of this many stays near 200 KB).
pub const MAX_BATCH: usize = 1_000;

/// `POST /v1/check`, and each item of a batch.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckRequest {
    pub namespace: String,
    pub account: String,
    /// The Member's name; or `identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// A Member's `spec.identity`: the user name the platform's login knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    pub permission: String,
    /// Absent: the account scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Answer only on state that holds the write at this resourceVersion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_resource_version: Option<String>,
}

/// The answer to one check.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckAnswer {
    pub allowed: bool,
    /// The state it was computed on holds every write up to this one (see `state::revision`).
    pub resource_version: String,
    pub via: Option<ViaJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// [`Via`] as it travels (deserializable, for clients and tests).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ViaJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub implicit: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

impl From<Via> for ViaJson {
    fn from(v: Via) -> Self {
        Self {
            binding: v.binding,
            role: v.role,
            team: v.team,
            implicit: v.implicit,
            default: v.default,
        }
    }
}

/// `POST /v1/check:batch`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchRequest {
    pub checks: Vec<CheckRequest>,
    /// Applies to the whole batch (as well as any item's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_resource_version: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAnswer {
    pub resource_version: String,
    /// In the order asked.
    pub results: Vec<CheckAnswer>,
}

/// `POST /v1/lookup/subjects`: who holds `permission` on the account or a project (`who-can`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectsRequest {
    pub namespace: String,
    pub account: String,
    pub permission: String,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub min_resource_version: Option<String>,
}

/// `POST /v1/lookup/permissions`: what a member holds, per scope, and why (`explain`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionsRequest {
    pub namespace: String,
    pub account: String,
    #[serde(default)]
    pub member: Option<String>,
    #[serde(default)]
    pub identity: Option<String>,
    /// With a permission, the answer also says whether it is held (as `explain --permission`).
    #[serde(default)]
    pub permission: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub min_resource_version: Option<String>,
}

/// A question that cannot be answered: 400 or 404.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("name exactly one of member and identity")]
    Subject,
    #[error("{0}")]
    NotFound(String),
}

fn subject<'a>(member: Option<&'a str>, identity: Option<&'a str>) -> Result<Subject<'a>, Refusal> {
    match (member, identity) {
        (Some(m), None) => Ok(Subject::Member(m)),
        (None, Some(i)) => Ok(Subject::Identity(i)),
        _ => Err(Refusal::Subject),
    }
}

impl CheckRequest {
    /// The request's own problem, if any (both or neither of member and identity).
    pub fn validate(&self) -> Result<(), Refusal> {
        subject(self.member.as_deref(), self.identity.as_deref()).map(|_| ())
    }
}

/// Answers one check on the current state; `resource_version` is what the caller read before.
pub fn check(
    shared: &Shared,
    request: &CheckRequest,
    resource_version: u64,
    now: Timestamp,
) -> CheckAnswer {
    let rv = resource_version.to_string();
    let refused = |reason: String| CheckAnswer {
        allowed: false,
        resource_version: rv.clone(),
        via: None,
        reason: Some(reason),
    };
    let subject = match subject(request.member.as_deref(), request.identity.as_deref()) {
        Ok(s) => s,
        Err(e) => return refused(e.to_string()),
    };
    let key = AccountKey::new(request.namespace.as_str(), request.account.as_str());
    let (permission, project) = (request.permission.as_str(), request.project.as_deref());
    // The account's evaluation when the controller (or a lookup) made one; else the member's own
    // grants, judged the same way, which costs a fraction of evaluating the account.
    let decided = shared.with_evaluation_if_made(
        &key,
        now,
        |index, eval| decide::decide(index, eval, subject, permission, project),
        |index| decide::decide_member(index, &key, now, subject, permission, project),
    );
    match decided {
        Some(d) => CheckAnswer {
            allowed: d.allowed,
            resource_version: rv,
            via: d.via.map(ViaJson::from),
            reason: d.reason,
        },
        None => refused("rolegate's state is unavailable".to_owned()),
    }
}

/// Answers `lookup/subjects` as JSON (the CLI's `who-can -o json`, plus `resourceVersion`), over
/// the account's own Members.
pub fn subjects(
    shared: &Shared,
    request: &SubjectsRequest,
    resource_version: u64,
    now: Timestamp,
) -> Result<serde_json::Value, Refusal> {
    let key = AccountKey::new(request.namespace.as_str(), request.account.as_str());
    let project = request.project.as_deref();
    let answered = shared.with_evaluation(&key, now, |index, eval| {
        if !eval.exists {
            return Err(Refusal::NotFound(format!(
                "account {} not found",
                key.account
            )));
        }
        let mut members = explain::who_can(index, eval, &request.permission, project)
            .map_err(|e| Refusal::NotFound(e.to_string()))?;
        // Only the account's own Members: an evaluation also judges members of other accounts
        // that its bindings name (R8), whose access is their own account's.
        let ns = index.namespace(&key.namespace);
        members.retain(|a| {
            ns.and_then(|ns| ns.member(&a.member))
                .is_some_and(|m| m.spec.account == key.account)
        });
        let body = WhoCan {
            namespace: &key.namespace,
            account: &key.account,
            permission: &request.permission,
            project,
            members: &members,
        };
        Ok(serde_json::to_value(&body).unwrap_or_default())
    });
    with_version(answered, resource_version)
}

/// Answers `lookup/permissions` as JSON (the CLI's `explain -o json`, plus `resourceVersion`).
pub fn permissions(
    shared: &Shared,
    request: &PermissionsRequest,
    resource_version: u64,
    now: Timestamp,
) -> Result<serde_json::Value, Refusal> {
    let subject = subject(request.member.as_deref(), request.identity.as_deref())?;
    let key = AccountKey::new(request.namespace.as_str(), request.account.as_str());
    let answered = shared.with_evaluation(&key, now, |index, eval| {
        if !eval.exists {
            return Err(Refusal::NotFound(format!(
                "account {} not found",
                key.account
            )));
        }
        let member = decide::member_of(index, &key, subject).ok_or_else(|| {
            Refusal::NotFound(match subject {
                Subject::Member(m) => {
                    format!("member {m} is not a member of account {}", key.account)
                }
                Subject::Identity(i) => {
                    format!("no member with identity {i} in account {}", key.account)
                }
            })
        })?;
        let explanation =
            explain::explain(index, eval, member).map_err(|e| Refusal::NotFound(e.to_string()))?;
        let answer = match request.permission.as_deref() {
            Some(p) => Some(
                explain::can(&explanation, eval, p, request.project.as_deref())
                    .map_err(|e| Refusal::NotFound(e.to_string()))?,
            ),
            None => None,
        };
        let body = Explained {
            explanation: &explanation,
            answer: answer.as_ref(),
        };
        Ok(serde_json::to_value(&body).unwrap_or_default())
    });
    with_version(answered, resource_version)
}

fn with_version(
    answered: Option<Result<serde_json::Value, Refusal>>,
    resource_version: u64,
) -> Result<serde_json::Value, Refusal> {
    let mut value = answered
        .ok_or_else(|| Refusal::NotFound("rolegate's state is unavailable".to_owned()))??;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "resourceVersion".to_owned(),
            serde_json::Value::String(resource_version.to_string()),
        );
    }
    Ok(value)
}
