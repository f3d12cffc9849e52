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

/// The bind right: holding `bindPermission`, or `<bindPermission>:<role>`, at a scope lets a
/// member grant a non-owner role there without holding its permissions.
pub fn holds_bind_right(
    account: Option<&Account>,
    role_name: &str,
    role: &Role,
    holds: &BTreeSet<&str>,
) -> bool {
    let Some(bind) = account.and_then(|a| a.spec.bind_permission.as_deref()) else {
        return false;
    };
    !role.spec.owner
        && (holds.contains(bind) || holds.contains(format!("{bind}:{role_name}").as_str()))
}

/// No escalation: the role's permissions are all held by the requester at that scope, unless it
/// holds the bind right there.
pub fn check_no_escalation(
    member: &str,
    role: &str,
    project: Option<&str>,
    grants: &BTreeSet<&str>,
    holds: &BTreeSet<&str>,
    bind_right: bool,
) -> Result<(), Violation> {
    let missing: Vec<&str> = grants.difference(holds).copied().collect();
    if missing.is_empty() || bind_right {
        return Ok(());
    }
    Err(Violation::new(
        Reason::DelegationDenied,
        format!(
            "member {member} may not grant role {role} on {}: they do not hold {} there, nor the account's bind permission",
            scope(project),
            missing.join(", ")
        ),
    ))
}

/// The change would give `member` permissions at a scope that the requester neither holds there
/// nor may bind there.
pub fn escalation(
    requester_member: &str,
    member: &str,
    project: Option<&str>,
    gained: &[&str],
) -> Violation {
    Violation::new(
        Reason::DelegationDenied,
        format!(
            "member {requester_member} may not make this change: it would give {member} {} on {}, which they do not hold there, nor the account's bind permission",
            gained.join(", "),
            scope(project)
        ),
    )
}
