//! R16: references resolve. A missing object is reported, never denied at admission, because
//! GitOps tools apply in their own order; it heals when the object arrives.

use crate::engine::rule::{RuleId, Violation};

pub fn account_not_found(account: &str) -> Violation {
    Violation::new(RuleId::R16, format!("account {account} does not exist"))
        .with_reason("AccountNotFound")
}

pub fn member_not_found(member: &str) -> Violation {
    Violation::new(RuleId::R16, format!("member {member} does not exist"))
        .with_reason("MemberNotFound")
}

pub fn role_not_found(role: &str) -> Violation {
    Violation::new(RuleId::R16, format!("role {role} does not exist")).with_reason("RoleNotFound")
}

pub fn project_not_found(project: &str, account: &str) -> Violation {
    Violation::new(
        RuleId::R16,
        format!("project {project} is not a project of account {account}"),
    )
    .with_reason("ProjectNotFound")
}
