//! R10: a locked role never changes (a CEL rule in the CRD, see `crate::api::Role`) and cannot be
//! deleted while bound.

use crate::engine::rule::{RuleId, Violation};

pub fn bound(role: &str, count: usize, example: &str) -> Violation {
    Violation::new(
        RuleId::R10,
        format!(
            "role {role} is locked and bound by {count} binding(s), {example} among them: it cannot be deleted while bound"
        ),
    )
}
