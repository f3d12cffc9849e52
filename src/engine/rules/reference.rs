//! R16: references resolve. A missing object is reported, never denied at admission, because
//! GitOps tools apply in their own order; it heals when the object arrives.

use crate::engine::rule::{Reason, Violation};

pub fn account_not_found(account: &str) -> Violation {
    Violation::new(
        Reason::AccountNotFound,
        format!("account {account} does not exist"),
    )
}

pub fn member_not_found(member: &str) -> Violation {
    Violation::new(
        Reason::MemberNotFound,
        format!("member {member} does not exist"),
    )
}

pub fn role_not_found(role: &str) -> Violation {
    Violation::new(Reason::RoleNotFound, format!("role {role} does not exist"))
}

pub fn project_not_found(project: &str, account: &str) -> Violation {
    Violation::new(
        Reason::ProjectNotFound,
        format!("project {project} is not a project of account {account}"),
    )
}

pub fn team_not_found(team: &str) -> Violation {
    Violation::new(Reason::TeamNotFound, format!("team {team} does not exist"))
}

/// A team lists a member that does not exist: reported on the team.
pub fn team_member_not_found(team: &str, member: &str) -> Violation {
    Violation::new(
        Reason::MemberNotFound,
        format!("team {team} lists member {member}, which does not exist"),
    )
}
