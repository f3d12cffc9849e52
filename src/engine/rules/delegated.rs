//! R13: a member who manages other members, teams and bindings does so only with the account's
//! member-admin permission at the scope of the change, grants only what they hold at that scope
//! unless they hold the bind right there (like RBAC's `bind` verb), and never touches a binding
//! that reaches themselves nor their own team membership. Requesters that are no member of the
//! account are left to Kubernetes RBAC.

use std::collections::BTreeSet;

use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::{Account, Role};

fn scope(project: Option<&str>) -> String {
    project.map_or_else(|| "the account".to_owned(), |p| format!("project {p}"))
}

/// The requester may manage members, teams and bindings at `project` (`None`: the account).
/// `holds` is what it holds at that scope, account-level access included (R15).
pub fn check_admin(
    requester: &str,
    member: &str,
    account_name: &str,
    account: Option<&Account>,
    project: Option<&str>,
    holds: &BTreeSet<&str>,
) -> Result<(), Violation> {
    let permission = account.and_then(|a| a.spec.member_admin_permission.as_deref());
    let Some(permission) = permission else {
        return Err(Violation::new(
            Reason::DelegationDenied,
            format!(
                "{requester} is member {member} of account {account_name}, which sets no spec.memberAdminPermission, so its members cannot manage members, teams or bindings"
            ),
        ));
    };
    if holds.contains(permission) {
        return Ok(());
    }
    let what = match project {
        Some(p) => format!("managing bindings on project {p}"),
        None => "managing members, teams and account-level bindings".to_owned(),
    };
    Err(Violation::new(
        Reason::DelegationDenied,
        format!(
            "{requester} is member {member} of account {account_name} and lacks permission {permission} on {}, which {what} requires",
            scope(project)
        ),
    ))
}

/// Nobody changes a binding that reaches themselves: their own, or one of a team they are in.
pub fn check_not_own(
    requester: &str,
    member: &str,
    binding: &str,
    team: Option<&str>,
) -> Result<(), Violation> {
    let through = match team {
        Some(team) => format!("binding {binding}, which reaches them through team {team}"),
        None => format!("their own binding {binding}"),
    };
    Err(Violation::new(
        Reason::DelegationDenied,
        format!("{requester} is member {member} and may not change {through}"),
    ))
}

/// Nobody adds or removes themselves in a team.
pub fn own_membership(requester: &str, member: &str, team: &str) -> Violation {
    Violation::new(
        Reason::DelegationDenied,
        format!(
            "{requester} is member {member} and may not add or remove themselves in team {team}"
        ),
    )
}

/// What the bind right says about one role at one scope: holding `bindPermission`, or
/// `<bindPermission>:<role>`, there lets a member grant a non-owner role without holding its
/// permissions. When it does not, why not: each reason has its own message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindRight<'a> {
    /// The requester may bind the role there.
    Held,
    /// The account sets no `spec.bindPermission`.
    Unset,
    /// The requester holds neither the account's bind permission nor its form for this role
    /// there.
    NotHeld(&'a str),
    /// An owner role, which no bind right covers; the bind permission the requester holds
    /// there (`bindPermission`, or its form for this role), if any.
    OwnerRole(Option<String>),
}

/// The bind right of a requester holding `holds` at a scope, for role `role_name`.
pub fn bind_right<'a>(
    account: Option<&'a Account>,
    role_name: &str,
    role: &Role,
    holds: &BTreeSet<&str>,
) -> BindRight<'a> {
    let bind = account.and_then(|a| a.spec.bind_permission.as_deref());
    let for_role = bind.map(|b| format!("{b}:{role_name}"));
    let held = bind
        .filter(|b| holds.contains(b))
        .map(str::to_owned)
        .or_else(|| for_role.filter(|p| holds.contains(p.as_str())));
    match (bind, held) {
        (_, held) if role.spec.owner => BindRight::OwnerRole(held),
        (None, _) => BindRight::Unset,
        (Some(_), Some(_)) => BindRight::Held,
        (Some(b), None) => BindRight::NotHeld(b),
    }
}

/// No escalation: the role's permissions are all held by the requester at that scope, unless
/// the bind right lets it grant the role there.
pub fn check_no_escalation(
    member: &str,
    role: &str,
    project: Option<&str>,
    grants: &BTreeSet<&str>,
    holds: &BTreeSet<&str>,
    bind: &BindRight<'_>,
) -> Result<(), Violation> {
    let missing: Vec<&str> = grants.difference(holds).copied().collect();
    let why = match bind {
        _ if missing.is_empty() => return Ok(()),
        BindRight::Held => return Ok(()),
        BindRight::Unset => ", and the account sets no spec.bindPermission".to_owned(),
        BindRight::NotHeld(b) => format!(", nor the bind permission {b} or {b}:{role}"),
        BindRight::OwnerRole(Some(p)) => {
            format!(", and the bind permission {p} they hold there never covers an owner role")
        }
        BindRight::OwnerRole(None) => ", and no bind permission covers an owner role".to_owned(),
    };
    Err(Violation::new(
        Reason::DelegationDenied,
        format!(
            "member {member} may not grant role {role} on {}: they do not hold {} there{why}",
            scope(project),
            missing.join(", ")
        ),
    ))
}

/// The change would give `member` permissions at a scope that the requester neither holds there
/// nor may bind there; `bind` is the account's bind permission, if it sets one.
pub fn escalation(
    requester_member: &str,
    member: &str,
    project: Option<&str>,
    gained: &[&str],
    bind: Option<&str>,
) -> Violation {
    let why = match bind {
        None => ", and the account sets no spec.bindPermission".to_owned(),
        Some(b) => {
            format!(", nor the bind permission {b} or {b}:<role> for a role that grants them")
        }
    };
    Violation::new(
        Reason::DelegationDenied,
        format!(
            "member {requester_member} may not make this change: it would give {member} {} on {}, which they do not hold there{why}",
            gained.join(", "),
            scope(project)
        ),
    )
}
