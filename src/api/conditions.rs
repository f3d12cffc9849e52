//! metav1.Condition helpers that follow the API conventions: `lastTransitionTime` moves only when
//! the status flips, so a resync that changes nothing writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Condition;

/// The condition types rolegate writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    Accepted,
    Redundant,
    Active,
    OwnerBound,
    Reconciling,
    Stalled,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Accepted => "Accepted",
            Self::Redundant => "Redundant",
            Self::Active => "Active",
            Self::OwnerBound => "OwnerBound",
            Self::Reconciling => "Reconciling",
            Self::Stalled => "Stalled",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
        }
    }

    pub fn from_bool(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }
}

/// Sets `type_` in `conditions`, keeping `lastTransitionTime` unless the status changes.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: &Time,
) {
    let next = |last_transition_time: Time| Condition {
        type_: type_.as_str().to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_.as_str()) {
        Some(existing) => {
            let since = if existing.status == status.as_str() {
                existing.last_transition_time.clone()
            } else {
                now.clone()
            };
            *existing = next(since);
        }
        None => conditions.push(next(now.clone())),
    }
}

/// Equal ignoring `lastTransitionTime` and order: what decides whether a status write is needed.
pub fn conditions_equal(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.type_ == y.type_
                    && x.status == y.status
                    && x.reason == y.reason
                    && x.message == y.message
                    && x.observed_generation == y.observed_generation
            })
        })
}
