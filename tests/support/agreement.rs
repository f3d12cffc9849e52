//! The agreement property of issue 11: `who-can` and `explain` say exactly what the evaluation's
//! effective permissions say, and every path they give ends in an accepted grant or a default role
//! that lists the permission.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rolegate::engine::explain;
use rolegate::engine::{AccountEvaluation, Index};

pub fn explain_agrees(
    index: &Index,
    eval: &AccountEvaluation,
    projects: &[String],
    permissions: &[&str],
) -> Result<(), TestCaseError> {
    let scopes: Vec<Option<&str>> = std::iter::once(None)
        .chain(projects.iter().map(|p| Some(p.as_str())))
        .collect();
    for permission in permissions {
        for scope in &scopes {
            let holders: BTreeSet<&str> = eval
                .members
                .iter()
                .filter(|(_, v)| v.access.permissions_at(*scope).contains(permission))
                .map(|(m, _)| m.as_str())
                .collect();
            let who = explain::who_can(index, eval, permission, *scope)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let listed: BTreeSet<&str> = who.iter().map(|a| a.member.as_str()).collect();
            prop_assert_eq!(&listed, &holders, "who-can {} at {:?}", permission, scope);
            for (member, verdict) in &eval.members {
                let e = explain::explain(index, eval, member)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let answer = explain::can(&e, eval, permission, *scope)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(answer.allowed, holders.contains(member.as_str()));
                prop_assert_eq!(answer.allowed, !answer.through.is_empty(), "{:?}", answer);
                for t in &answer.through {
                    if t.default {
                        prop_assert!(verdict.access.defaulted);
                    } else {
                        prop_assert!(
                            verdict
                                .sources
                                .iter()
                                .any(|s| Some(&s.binding) == t.binding.as_ref()
                                    && s.team == t.team
                                    && s.role == t.role
                                    && s.project == t.project),
                            "path {:?} is no accepted grant",
                            t
                        );
                    }
                    prop_assert_eq!(t.chain.first(), Some(&t.role));
                    let last = t.chain.last().cloned().unwrap_or_default();
                    let lists =
                        e.paths.iter().flat_map(|p| &p.reached).any(|r| {
                            r.role == last && r.permissions.iter().any(|x| x == permission)
                        });
                    prop_assert!(lists, "{} does not list {}", last, permission);
                }
            }
        }
    }
    Ok(())
}
