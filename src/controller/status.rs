//! Pure status builders: from an evaluation and the status an object carries now, the status it
//! should carry. `lastTransitionTime` only moves when a condition flips, so an unchanged world
//! produces an equal status and the controller writes nothing.
//!
//! Conditions follow kstatus: `Ready` always; `Reconciling=True` while waiting for an object that
//! may still arrive (GitOps apply order); `Stalled=True` when only a change to the manifests helps.
//! Both are present only while true.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    AccountStatus, Condition, ConditionStatus, ConditionType, MemberStatus, RefusedGrant,
    RoleBindingStatus, RoleSource, RoleStatus, TeamStatus, UnreachedMember, set_condition,
};
use crate::engine::{
    AccountEvaluation, BindingVerdict, MemberVerdict, RoleEvaluation, TeamVerdict, Violation,
};

/// Sets `Ready` from an optional problem, with `Reconciling` or `Stalled` beside it.
fn readiness(
    conditions: &mut Vec<Condition>,
    problem: Option<&Violation>,
    ready_message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    match problem {
        None => {
            set_condition(
                conditions,
                ConditionType::Ready,
                ConditionStatus::True,
                "Ready",
                ready_message,
                generation,
                now,
            );
            conditions.retain(|c| c.type_ != "Reconciling" && c.type_ != "Stalled");
        }
        Some(v) => {
            set_condition(
                conditions,
                ConditionType::Ready,
                ConditionStatus::False,
                v.reason.as_str(),
                &v.message,
                generation,
                now,
            );
            let (on, off) = if v.may_heal() {
                (ConditionType::Reconciling, ConditionType::Stalled)
            } else {
                (ConditionType::Stalled, ConditionType::Reconciling)
            };
            set_condition(
                conditions,
                on,
                ConditionStatus::True,
                v.reason.as_str(),
                &v.message,
                generation,
                now,
            );
            conditions.retain(|c| c.type_ != off.as_str());
        }
    }
}

/// A binding's conditions: `Accepted`, `Active` (R18: inside its window), `Redundant`, `Ready`.
/// An inactive binding is still accepted and Ready: it is scheduled, not broken.
pub fn binding(
    verdict: Option<&BindingVerdict>,
    missing_account: &Violation,
    generation: Option<i64>,
    current: Option<&RoleBindingStatus>,
    now: &Time,
) -> RoleBindingStatus {
    let mut conditions = current.map(|s| s.conditions.clone()).unwrap_or_default();
    let (accepted, redundant) = match verdict {
        Some(v) => (v.accepted.as_ref().err(), v.redundant.as_ref()),
        None => (Some(missing_account), None),
    };
    match accepted {
        None => set_condition(
            &mut conditions,
            ConditionType::Accepted,
            ConditionStatus::True,
            "Accepted",
            "the binding passes every rule and grants its role",
            generation,
            now,
        ),
        Some(v) => set_condition(
            &mut conditions,
            ConditionType::Accepted,
            ConditionStatus::False,
            v.reason.as_str(),
            &v.message,
            generation,
            now,
        ),
    }
    match verdict.and_then(|v| v.inactive.as_ref()) {
        Some(v) => set_condition(
            &mut conditions,
            ConditionType::Active,
            ConditionStatus::False,
            v.reason.as_str(),
            &v.message,
            generation,
            now,
        ),
        None => set_condition(
            &mut conditions,
            ConditionType::Active,
            ConditionStatus::True,
            "WithinWindow",
            "the binding has no time window, or the current time lies inside it",
            generation,
            now,
        ),
    }
    match redundant {
        Some(v) => set_condition(
            &mut conditions,
            ConditionType::Redundant,
            ConditionStatus::True,
            v.reason.as_str(),
            &v.message,
            generation,
            now,
        ),
        None => set_condition(
            &mut conditions,
            ConditionType::Redundant,
            ConditionStatus::False,
            "GrantsPermissions",
            "the binding grants permissions no other binding of the member grants",
            generation,
            now,
        ),
    }
    readiness(
        &mut conditions,
        accepted,
        "the binding is accepted",
        generation,
        now,
    );
    let unreached = verdict
        .filter(|v| v.accepted.is_ok())
        .map(|v| {
            v.unreached
                .iter()
                .map(|(member, why)| UnreachedMember {
                    member: member.clone(),
                    rule: why.rule.id().to_owned(),
                    reason: why.reason.as_str().to_owned(),
                    message: why.message.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    RoleBindingStatus {
        unreached,
        observed_generation: generation,
        conditions,
    }
}

/// A member's effective access and `permissionsGeneration`, which rises exactly when the
/// effective permissions change.
pub fn member(
    verdict: &MemberVerdict,
    generation: Option<i64>,
    current: Option<&MemberStatus>,
    now: &Time,
) -> MemberStatus {
    let mut conditions = current.map(|s| s.conditions.clone()).unwrap_or_default();
    let access = &verdict.access;
    readiness(
        &mut conditions,
        verdict.problem.as_ref(),
        "effective access is computed",
        generation,
        now,
    );
    let previous = current.map(|s| s.permissions_generation).unwrap_or(0);
    let changed = current.is_none_or(|s| s.permissions != access.permissions) || previous == 0;
    let source = |g: &crate::engine::GrantSource| RoleSource {
        role: g.role.clone(),
        project: g.project.clone(),
        binding: g.binding.clone(),
        team: g.team.clone(),
    };
    MemberStatus {
        roles: access.roles.clone(),
        permissions: access.permissions.clone(),
        sources: verdict.sources.iter().map(source).collect(),
        refused: verdict
            .refused
            .iter()
            .map(|(g, why)| RefusedGrant {
                source: source(g),
                rule: why.rule.id().to_owned(),
                reason: why.reason.as_str().to_owned(),
                message: why.message.clone(),
            })
            .collect(),
        permissions_generation: if changed { previous + 1 } else { previous },
        observed_generation: generation,
        conditions,
    }
}

/// An account's owner, counts, `OwnerBound` and `Ready`.
pub fn account(
    eval: &AccountEvaluation,
    generation: Option<i64>,
    current: Option<&AccountStatus>,
    now: &Time,
) -> AccountStatus {
    let mut conditions = current.map(|s| s.conditions.clone()).unwrap_or_default();
    let owner_problem = eval
        .problems
        .iter()
        .find(|p| p.rule == crate::engine::RuleId::R2);
    match (&eval.owner, owner_problem) {
        (Some(owner), _) => set_condition(
            &mut conditions,
            ConditionType::OwnerBound,
            ConditionStatus::True,
            "OwnerBound",
            &format!("{owner} owns the account"),
            generation,
            now,
        ),
        (None, Some(v)) => set_condition(
            &mut conditions,
            ConditionType::OwnerBound,
            ConditionStatus::False,
            v.reason.as_str(),
            &v.message,
            generation,
            now,
        ),
        (None, None) => {}
    }
    readiness(
        &mut conditions,
        eval.problems.first(),
        "the account has an owner and every reference resolves",
        generation,
        now,
    );
    let mut conflicts_by_rule = std::collections::BTreeMap::new();
    for (_, v) in eval.conflicts() {
        *conflicts_by_rule
            .entry(v.rule.id().to_owned())
            .or_insert(0u32) += 1;
    }
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    AccountStatus {
        owner: eval.owner.clone(),
        members: count(eval.members.len()),
        teams: count(eval.teams.len()),
        bindings: count(eval.bindings.len()),
        conflicts: conflicts_by_rule.values().sum(),
        conflicts_by_rule,
        observed_generation: generation,
        conditions,
    }
}

/// A role's effective permissions, bound count and `Ready` (includes resolved, no cycle).
pub fn role(
    eval: &RoleEvaluation,
    generation: Option<i64>,
    current: Option<&RoleStatus>,
    now: &Time,
) -> RoleStatus {
    let mut conditions = current.map(|s| s.conditions.clone()).unwrap_or_default();
    readiness(
        &mut conditions,
        eval.problem.as_ref(),
        "every include resolves",
        generation,
        now,
    );
    RoleStatus {
        effective_permissions: eval.effective_permissions.clone(),
        bound_count: eval.bound_count,
        observed_generation: generation,
        conditions,
    }
}

/// A team's resolved members, the bindings naming it and `Ready`: `Reconciling` while a listed
/// member is missing (R16, it may still arrive), `Stalled` for a foreign member (R8). A team whose
/// account is not evaluated carries `missing_account`.
pub fn team(
    verdict: Option<&TeamVerdict>,
    missing_account: &Violation,
    generation: Option<i64>,
    current: Option<&TeamStatus>,
    now: &Time,
) -> TeamStatus {
    let mut conditions = current.map(|s| s.conditions.clone()).unwrap_or_default();
    let problem = match verdict {
        Some(v) => v.problems.first(),
        None => Some(missing_account),
    };
    readiness(
        &mut conditions,
        problem,
        "every listed member resolves to a Member of the account",
        generation,
        now,
    );
    TeamStatus {
        members: verdict.map_or(0, |v| u32::try_from(v.resolved.len()).unwrap_or(u32::MAX)),
        resolved: verdict.map(|v| v.resolved.clone()).unwrap_or_default(),
        bindings: verdict.map_or(0, |v| v.bindings),
        observed_generation: generation,
        conditions,
    }
}

/// What every kind's status has in common, for the parts of the controller that treat them
/// alike: the conditions, and what to drop when the whole status cannot be stored.
pub trait Reported: Clone + PartialEq + serde::Serialize {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// Drops the parts that grow with the object's own content (a member's access and sources,
    /// a team's members), keeping counts, generations and conditions.
    fn shrink(&mut self);
    /// Keeps what must not move while the status cannot be stored: a member's
    /// `permissionsGeneration` rises only with permissions that were published.
    fn keep(&mut self, _current: &Self) {}
}

macro_rules! reported {
    ($status:ty, |$s:ident| $shrink:block) => {
        impl Reported for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }
            fn shrink(&mut self) {
                let $s = self;
                $shrink
            }
        }
    };
}

impl Reported for MemberStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn shrink(&mut self) {
        self.roles = Default::default();
        self.permissions = Default::default();
        self.sources = Vec::new();
        self.refused = Vec::new();
    }
    fn keep(&mut self, current: &Self) {
        self.permissions_generation = current.permissions_generation;
    }
}
reported!(AccountStatus, |s| {
    s.conflicts_by_rule = Default::default();
});
reported!(RoleStatus, |s| {
    s.effective_permissions = Vec::new();
});
reported!(TeamStatus, |s| {
    s.resolved = Vec::new();
});
reported!(RoleBindingStatus, |s| {
    s.unreached = Vec::new();
});

/// The condition reason of a status the API server refused to store for good.
pub fn unwritable_reason(code: u16) -> &'static str {
    match code {
        422 => "StatusInvalid",
        _ => "StatusTooLarge",
    }
}

/// The status to write instead of `next` when the API server refuses to store `next` for a reason
/// retrying cannot fix (too large, invalid): `next` without its growing parts, not Ready and
/// Stalled with `reason` and `message`, so that `kubectl get` and kstatus show it.
pub fn unwritable<S: Reported>(
    next: &S,
    current: Option<&S>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> S {
    let mut status = next.clone();
    status.shrink();
    if let Some(current) = current {
        status.keep(current);
    }
    // `next` judged Ready from the current conditions; this report starts from them again, so
    // that reporting the same refusal twice is the same status (no new transition time).
    let readiness = [ConditionType::Ready, ConditionType::Stalled];
    let conditions = status.conditions_mut();
    conditions.retain(|c| !readiness.iter().any(|t| c.type_ == t.as_str()));
    conditions.extend(
        current
            .map(Reported::conditions)
            .unwrap_or_default()
            .iter()
            .filter(|c| readiness.iter().any(|t| c.type_ == t.as_str()))
            .cloned(),
    );
    for type_ in readiness {
        let value = match type_ {
            ConditionType::Ready => ConditionStatus::False,
            _ => ConditionStatus::True,
        };
        set_condition(conditions, type_, value, reason, message, generation, now);
    }
    conditions.retain(|c| c.type_ != ConditionType::Reconciling.as_str());
    status
}

/// Whether `next` reports a finding that may still heal by itself (`Reconciling=True`: a
/// reference to an object that has not arrived) that `current` does not report already.
pub fn newly_waiting<S: Reported>(next: &S, current: Option<&S>) -> bool {
    let waiting = |conditions: &[Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == ConditionType::Reconciling.as_str() && c.status == "True")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let Some(now) = waiting(next.conditions()) else {
        return false;
    };
    current.and_then(|c| waiting(c.conditions())) != Some(now)
}
