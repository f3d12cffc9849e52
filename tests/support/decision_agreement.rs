//! The decision API's property (issue 26), beside `agreement.rs`: `check` and `lookup/subjects`
//! say what Member status, `explain` and `who-can` say.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rolegate::engine::explain;
use rolegate::engine::{AccountEvaluation, Index};

/// The decision API's property (issue 26): for every member, permission and scope, `check` says
/// what the Member's status says (account ∪ projects[p]) and what `explain` says, names a grant
/// `explain` lists when allowed, answers the same by identity, and `lookup/subjects` is `who-can`.
/// `shared` holds the same objects as `index`.
pub fn decision_agrees(
    shared: &rolegate::state::Shared,
    index: &Index,
    eval: &AccountEvaluation,
    projects: &[String],
    permissions: &[&str],
) -> Result<(), TestCaseError> {
    use rolegate::decision::answer::{self, CheckRequest, SubjectsRequest};
    use rolegate::engine::Timestamp;
    let at = Timestamp::UNIX_EPOCH;
    let key = &eval.key;
    let scopes: Vec<Option<&str>> = std::iter::once(None)
        .chain(projects.iter().map(|p| Some(p.as_str())))
        .collect();
    let ask =
        |member: Option<&str>, identity: Option<&str>, permission: &str, scope: Option<&str>| {
            answer::check(
                shared,
                &CheckRequest {
                    namespace: key.namespace.clone(),
                    account: key.account.clone(),
                    member: member.map(str::to_owned),
                    identity: identity.map(str::to_owned),
                    permission: permission.to_owned(),
                    project: scope.map(str::to_owned),
                    min_resource_version: None,
                },
                7,
                at,
            )
        };
    if !eval.exists {
        // No Account object (its members' statuses may still list defaults): a check fails
        // closed.
        for member in eval.members.keys() {
            for permission in permissions {
                let answer = ask(Some(member), None, permission, None);
                prop_assert!(!answer.allowed && answer.reason.is_some(), "{:?}", answer);
            }
        }
        return Ok(());
    }
    for permission in permissions {
        for scope in &scopes {
            let mut allowed_members = BTreeSet::new();
            for (member, verdict) in &eval.members {
                // A member of another account that a binding here names (R8): its status is its
                // own account's, and here it holds nothing.
                let own = index
                    .namespace(&key.namespace)
                    .and_then(|ns| ns.member(member))
                    .is_some_and(|m| m.spec.account == key.account);
                if !own {
                    let answer = ask(Some(member), None, permission, *scope);
                    prop_assert!(!answer.allowed && answer.via.is_none(), "{:?}", answer);
                    continue;
                }
                // The Member status formula: account ∪ projects[p].
                let status = &verdict.access.permissions;
                let expected = status.account.iter().any(|p| p == permission)
                    || scope
                        .and_then(|s| status.projects.get(s))
                        .is_some_and(|ps| ps.iter().any(|p| p == permission));
                let answer = ask(Some(member), None, permission, *scope);
                // Both ways to the answer agree: from the evaluation, and from the member's own
                // grants (what a check uses when no evaluation is at hand, as here).
                let subject = rolegate::engine::decide::Subject::Member(member);
                let warm =
                    rolegate::engine::decide::decide(index, eval, subject, permission, *scope);
                let cold = rolegate::engine::decide::decide_member(
                    index, key, at, subject, permission, *scope,
                );
                prop_assert_eq!(&warm, &cold);
                prop_assert_eq!(warm.allowed, answer.allowed);
                prop_assert_eq!(
                    answer.allowed,
                    expected,
                    "{} {} at {:?}",
                    member,
                    permission,
                    scope
                );
                prop_assert_eq!(&answer.resource_version, "7");
                let e = explain::explain(index, eval, member)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let can = explain::can(&e, eval, permission, *scope)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(answer.allowed, can.allowed);
                match &answer.via {
                    Some(via) => {
                        prop_assert!(answer.allowed && answer.reason.is_none());
                        let listed = can.through.iter().any(|t| {
                            t.binding == via.binding
                                && t.team == via.team
                                && t.role == via.role
                                && t.default == via.default
                                && t.implicit == via.implicit
                        });
                        prop_assert!(listed, "via {:?} is not among {:?}", via, can.through);
                    }
                    None => {
                        prop_assert!(!answer.allowed && answer.reason.is_some(), "{:?}", answer)
                    }
                }
                if answer.allowed {
                    allowed_members.insert(member.clone());
                }
                // By identity: the member whose identity it is (the first by name, as R13).
                let identity = index
                    .namespace(&key.namespace)
                    .and_then(|ns| ns.member(member))
                    .and_then(|m| m.spec.identity.clone());
                if let Some(identity) = identity {
                    let first = index
                        .namespace(&key.namespace)
                        .and_then(|ns| {
                            ns.members_with_identity(&identity).find(|m| {
                                ns.member(m).is_some_and(|m| m.spec.account == key.account)
                            })
                        })
                        .map(str::to_owned);
                    if first.as_deref() == Some(member.as_str()) {
                        let by_identity = ask(None, Some(&identity), permission, *scope);
                        prop_assert_eq!(&by_identity, &answer);
                    }
                }
            }
            // lookup/subjects is who-can, and lists exactly the members check allows.
            let subjects = answer::subjects(
                shared,
                &SubjectsRequest {
                    namespace: key.namespace.clone(),
                    account: key.account.clone(),
                    permission: (*permission).to_owned(),
                    project: scope.map(str::to_owned),
                    min_resource_version: None,
                },
                7,
                at,
            );
            let subjects = subjects.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut who = explain::who_can(index, eval, permission, *scope)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            who.retain(|a| {
                index
                    .namespace(&key.namespace)
                    .and_then(|ns| ns.member(&a.member))
                    .is_some_and(|m| m.spec.account == key.account)
            });
            let cli = rolegate::explain::WhoCan {
                namespace: &key.namespace,
                account: &key.account,
                permission,
                project: *scope,
                members: &who,
            };
            let mut expected =
                serde_json::to_value(&cli).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Some(o) = expected.as_object_mut() {
                o.insert("resourceVersion".into(), "7".into());
            }
            prop_assert_eq!(&subjects, &expected);
            let listed: BTreeSet<String> = who.iter().map(|a| a.member.clone()).collect();
            prop_assert_eq!(listed, allowed_members);
        }
    }
    // Nobody outside the account, and no project it lacks.
    let stranger = ask(
        Some("no-such-member"),
        None,
        permissions.first().copied().unwrap_or("p"),
        None,
    );
    prop_assert!(!stranger.allowed && stranger.reason.is_some());
    if let Some(member) = eval.members.keys().next() {
        let nowhere = ask(
            Some(member),
            None,
            permissions.first().copied().unwrap_or("p"),
            Some("no-such-project"),
        );
        prop_assert!(!nowhere.allowed && nowhere.reason.is_some());
    }
    Ok(())
}
