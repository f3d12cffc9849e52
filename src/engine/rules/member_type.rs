//! R7: the role's `memberTypes` include the member's type.

use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::{Member, Role};

pub fn check(
    member_name: &str,
    member: &Member,
    role_name: &str,
    role: &Role,
) -> Result<(), Violation> {
    if role.spec.member_types.contains(&member.spec.member_type) {
        return Ok(());
    }
    let allowed: Vec<String> = role
        .spec
        .member_types
        .iter()
        .map(ToString::to_string)
        .collect();
    Err(Violation::new(
        Reason::MemberTypeNotAllowed,
        format!(
            "member {member_name} is of type {}, but role {role_name} may only be held by [{}]",
            member.spec.member_type,
            allowed.join(", ")
        ),
    ))
}
