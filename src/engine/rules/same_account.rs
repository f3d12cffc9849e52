//! R8: member, team, the team's members, binding and custom role belong to the same account.

use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::{Member, Role, Team};

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

/// A binding names a team of another account.
pub fn check_team(binding_account: &str, team_name: &str, team: &Team) -> Result<(), Violation> {
    if team.spec.account == binding_account {
        return Ok(());
    }
    Err(Violation::new(
        Reason::AccountMismatch,
        format!(
            "team {team_name} belongs to account {}, not to account {binding_account}",
            team.spec.account
        ),
    ))
}

/// A team lists a member of another account: reported on the team, and the member receives
/// nothing through it.
pub fn check_team_member(
    team_name: &str,
    team: &Team,
    member_name: &str,
    member: &Member,
) -> Result<(), Violation> {
    if member.spec.account == team.spec.account {
        return Ok(());
    }
    Err(Violation::new(
        Reason::AccountMismatch,
        format!(
            "team {team_name} of account {} lists member {member_name}, which belongs to account {}",
            team.spec.account, member.spec.account
        ),
    ))
}
