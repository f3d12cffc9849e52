//! R12: included roles exist, are visible to the including role, and form no cycle.

use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::Role;

/// A shared role sees only shared roles; a custom role also sees its own account's roles.
pub fn visible(from: &Role, target: &Role) -> bool {
    match (&from.spec.account, &target.spec.account) {
        (_, None) => true,
        (Some(a), Some(b)) => a == b,
        (None, Some(_)) => false,
    }
}

pub fn missing(role: &str, included: &str) -> Violation {
    Violation::new(
        Reason::IncludeNotFound,
        format!("role {role} includes {included}, which does not exist"),
    )
}

pub fn invisible(role: &str, from: &Role, included: &str, target: &Role) -> Violation {
    let whose = |r: &Role| match &r.spec.account {
        Some(a) => format!("private to account {a}"),
        None => "shared".to_owned(),
    };
    Violation::new(
        Reason::InvalidIncludes,
        format!(
            "role {role} ({}) includes {included} ({}), which it cannot see",
            whose(from),
            whose(target)
        ),
    )
}

pub fn cycle(path: &[&str]) -> Violation {
    Violation::new(
        Reason::InvalidIncludes,
        format!("roles include each other in a cycle: {}", path.join(" -> ")),
    )
}
