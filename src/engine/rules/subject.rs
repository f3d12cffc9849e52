//! R17: a binding names exactly one subject, `member` or `team`. The CRD says so in CEL too; this
//! is the same rule for `check` and for objects that reached the store without the CRD's rule.

use crate::api::{RoleBindingSpec, Subject};
use crate::engine::rule::{Reason, Violation};

pub fn check<'a>(binding: &str, spec: &'a RoleBindingSpec) -> Result<Subject<'a>, Violation> {
    spec.subject().ok_or_else(|| {
        let what = if spec.member.is_some() {
            "both spec.member and spec.team"
        } else {
            "neither spec.member nor spec.team"
        };
        Violation::new(
            Reason::InvalidSubject,
            format!("binding {binding} names {what}: a binding names exactly one subject"),
        )
    })
}
