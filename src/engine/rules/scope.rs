//! R6: a Project role names a project, an Account role does not.

use crate::api::RoleScope;
use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::Role;

pub fn check(role_name: &str, role: &Role, project: Option<&str>) -> Result<(), Violation> {
    match (role.spec.scope, project) {
        (RoleScope::Project, None) => Err(Violation::new(
            Reason::ScopeMismatch,
            format!(
                "role {role_name} has scope Project, so the binding must name a project in spec.project"
            ),
        )),
        (RoleScope::Account, Some(p)) => Err(Violation::new(
            Reason::ScopeMismatch,
            format!(
                "role {role_name} has scope Account, so the binding must not name a project (it names {p})"
            ),
        )),
        _ => Ok(()),
    }
}
