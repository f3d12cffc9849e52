//! R13: a member who manages other members and bindings does so only with the account's
//! member-admin permission, grants only what they hold at that scope, and never touches their own
//! bindings. Requesters that are no member of the account are left to Kubernetes RBAC.

use std::collections::BTreeSet;

use crate::engine::effective::Access;
use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::Account;

/// The requester may manage members and bindings of the account at all.
pub fn check_admin(
    requester: &str,
    member: &str,
    account_name: &str,
    account: Option<&Account>,
    access: &Access,
) -> Result<(), Violation> {
    let permission = account.and_then(|a| a.spec.member_admin_permission.as_deref());
    let Some(permission) = permission else {
        return Err(Violation::new(
            Reason::DelegationDenied,
            format!(
                "{requester} is member {member} of account {account_name}, which sets no spec.memberAdminPermission, so its members cannot manage members or bindings"
            ),
        ));
    };
    if access.permissions.account.iter().any(|p| p == permission) {
        return Ok(());
    }
    Err(Violation::new(
        Reason::DelegationDenied,
        format!(
            "{requester} is member {member} of account {account_name} and lacks permission {permission}, which managing members and bindings requires"
        ),
    ))
}

/// Nobody changes their own bindings.
pub fn check_not_own(
    requester: &str,
    member: &str,
    binding: &str,
    bound_member: &str,
) -> Result<(), Violation> {
    if bound_member != member {
        return Ok(());
    }
    Err(Violation::new(
        Reason::DelegationDenied,
        format!("{requester} is member {member} and may not change their own binding {binding}"),
    ))
}

/// No escalation: the role's permissions are all held by the requester at that scope.
pub fn check_no_escalation(
    member: &str,
    role: &str,
    project: Option<&str>,
    grants: &BTreeSet<&str>,
    holds: &BTreeSet<&str>,
) -> Result<(), Violation> {
    let missing: Vec<&str> = grants.difference(holds).copied().collect();
    if missing.is_empty() {
        return Ok(());
    }
    let scope = project.map_or_else(|| "the account".to_owned(), |p| format!("project {p}"));
    Err(Violation::new(
        Reason::DelegationDenied,
        format!(
            "member {member} may not grant role {role} on {scope}: they do not hold {}",
            missing.join(", ")
        ),
    ))
}
