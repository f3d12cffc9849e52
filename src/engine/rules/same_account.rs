//! R8: member, binding and custom role belong to the same account.

use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::{Member, Role};

pub fn check_member(
    binding_account: &str,
    member_name: &str,
    member: &Member,
) -> Result<(), Violation> {
    if member.spec.account == binding_account {
        return Ok(());
    }
    Err(Violation::new(
        Reason::AccountMismatch,
        format!(
            "member {member_name} belongs to account {}, not to account {binding_account}",
            member.spec.account
        ),
    ))
}

pub fn check_role(binding_account: &str, role_name: &str, role: &Role) -> Result<(), Violation> {
    match role.spec.account.as_deref() {
        Some(owner) if owner != binding_account => Err(Violation::new(
            Reason::AccountMismatch,
            format!(
                "role {role_name} is private to account {owner}, not usable in account {binding_account}"
            ),
        )),
        _ => Ok(()),
    }
}
