//! R5: no member holds two directly bound roles of one exclusive group on one scope, whether the
//! bindings name it or a team it is in. Roles reached
//! through `includes` do not count, and an account-level binding counts on every project. Two
//! time-bound grants conflict only if their windows overlap (R18): the windows themselves, not
//! today's state, so two grants both scheduled for next month conflict today.

use crate::engine::effective::Held;
use crate::engine::rule::{Reason, Violation};
use crate::engine::rules::window::Window;
use crate::engine::slim::Role;

/// Checks a new binding against the bindings already accepted for the same member.
pub fn check(
    member: &str,
    account: &str,
    role_name: &str,
    role: &Role,
    project: Option<&str>,
    window: &Window,
    held: &[Held<'_>],
) -> Result<(), Violation> {
    if role.spec.exclusive_groups.is_empty() {
        return Ok(());
    }
    for other in held {
        let overlaps = other.project.is_none() || project.is_none() || other.project == project;
        if other.role_name == role_name || !overlaps || !other.window.overlaps(window) {
            continue;
        }
        if let Some(group) = role
            .spec
            .exclusive_groups
            .iter()
            .find(|g| other.role.spec.exclusive_groups.contains(g))
        {
            let scope = match other.project {
                Some(p) => format!("project {p}"),
                None if project.is_some() => {
                    format!("account {account} (which counts on every project)")
                }
                None => format!("account {account}"),
            };
            let mut through = match other.team {
                Some(team) => format!("binding {} of team {team}", other.binding),
                None => format!("binding {}", other.binding),
            };
            if !other.window.is_open() || !window.is_open() {
                through.push_str(&format!(
                    " in an overlapping window ({})",
                    describe(&other.window)
                ));
            }
            return Err(Violation::new(
                Reason::ExclusiveRoleConflict,
                format!(
                    "{member} already holds {} on {scope} through {through}; {role_name} and {} are exclusive (group {group})",
                    other.role_name, other.role_name
                ),
            ));
        }
    }
    Ok(())
}

/// `[from, until)` with open sides shown as `…`.
fn describe(window: &Window) -> String {
    let side = |t: Option<k8s_openapi::jiff::Timestamp>| {
        t.map_or_else(|| "…".to_owned(), |t| t.to_string())
    };
    format!("[{}, {})", side(window.from), side(window.until))
}
