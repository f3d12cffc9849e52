//! R10: a locked role never changes (a CEL rule in the CRD, see `crate::api::Role`) and cannot be
//! deleted while bound.

use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::Role;

/// R10: a locked role is not deleted while `bound` (the bindings that name it) is not empty.
pub fn check_delete(role_name: &str, role: &Role, bound: &[&str]) -> Result<(), Violation> {
    match bound.first() {
        Some(first) if role.spec.locked => Err(self::bound(role_name, bound.len(), first)),
        _ => Ok(()),
    }
}

pub fn bound(role: &str, count: usize, example: &str) -> Violation {
    Violation::new(
        Reason::RoleLocked,
        format!(
            "role {role} is locked and bound by {count} binding(s), {example} among them: it cannot be deleted while bound"
        ),
    )
}
