//! R9: a binding whose role grants nothing beyond another accepted binding of the same member on
//! the same scope (or at account level, which reaches every project) for its whole time window
//! (R18) is redundant.

use std::collections::BTreeMap;

use crate::api::RedundantPolicy;
use crate::engine::effective::Held;
use crate::engine::rule::{Reason, Severity, Violation};
use crate::engine::slim::Account;

/// The account's R9 policy, read in this one place: a redundant binding is a warning, or under
/// `redundantBindings: Deny` an error (denied at admission, failing `check`).
pub fn severity(account: Option<&Account>) -> Severity {
    match account.map(|a| a.spec.redundant_bindings) {
        Some(RedundantPolicy::Deny) => Severity::Error,
        _ => Severity::Warning,
    }
}

/// The redundant bindings among one member's accepted bindings, given in acceptance order: each
/// redundant binding's name with the positions in `held` of itself and of the grant that covers
/// it. Of two bindings that grant the same, the later one is the redundant one. The message is
/// built by [`redundant`] only where a verdict shows it: a team binding's admission judges every
/// member's grants and reads one.
pub fn find<'a>(held: &[Held<'a>]) -> BTreeMap<&'a str, (usize, usize)> {
    let mut out = BTreeMap::new();
    for (i, h) in held.iter().enumerate() {
        let beyond = held.iter().enumerate().find(|(j, g)| {
            *j != i
                && g.covers(h.project)
                && g.window.covers(&h.window)
                && h.grants.permissions.is_subset(&g.grants.permissions)
                && (*j < i
                    || g.grants.permissions.len() > h.grants.permissions.len()
                    || g.window != h.window)
        });
        if let Some((j, _)) = beyond {
            out.insert(h.binding, (i, j));
        }
    }
    out
}

pub fn redundant(member: &str, h: &Held<'_>, g: &Held<'_>) -> Violation {
    let scope =
        |p: Option<&str>| p.map_or_else(|| "the account".to_owned(), |p| format!("project {p}"));
    Violation::new(
        Reason::RedundantBinding,
        format!(
            "binding {} gives {member} role {} on {}, which grants nothing beyond binding {} (role {} on {})",
            h.binding,
            h.role_name,
            scope(h.project),
            g.binding,
            g.role_name,
            scope(g.project)
        ),
    )
}
