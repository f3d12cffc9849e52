//! The decision API's question, "may this member use permission P at this scope?", answered from
//! an account's evaluation: `allowed` is what the member's effective permissions say (account ∪
//! projects[p], exactly what its status shows), and `via` names one grant that carries it.

use serde::Serialize;

use super::context::{Change, Ctx};
use super::evaluate::{AccountEvaluation, GrantSource};
use super::index::{AccountKey, Index};
use crate::api::RoleScope;

/// Who is asked about: a Member by name, or by `spec.identity` (the user name the platform's login
/// knows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    Member(&'a str),
    Identity(&'a str),
}

/// The grant an allowed answer comes through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Via {
    /// `None` for a default role (R14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// The bound role (the permission may come from a role it includes).
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// An account-level grant answering for a project (R15).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub implicit: bool,
    /// Held because the member has no active accepted grant (R14).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

/// The answer: allowed with the grant, or denied with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The member the subject resolved to.
    pub member: Option<String>,
    pub allowed: bool,
    pub via: Option<Via>,
    pub reason: Option<String>,
}

impl Decision {
    fn denied(member: Option<&str>, reason: String) -> Self {
        Self {
            member: member.map(str::to_owned),
            allowed: false,
            via: None,
            reason: Some(reason),
        }
    }
}

/// The member `subject` names in the account `key`: by name, or the first (by name) whose
/// `spec.identity` it is, as R13 maps a requester.
pub fn member_of<'i>(index: &'i Index, key: &AccountKey, subject: Subject<'_>) -> Option<&'i str> {
    let ns = index.namespace(&key.namespace)?;
    let in_account = |name: &str| {
        ns.member(name)
            .is_some_and(|m| m.spec.account == key.account)
    };
    match subject {
        Subject::Member(name) => ns
            .members
            .get_key_value(name)
            .map(|(k, _)| k.as_str())
            .filter(|m| in_account(m)),
        Subject::Identity(identity) => ns.members_with_identity(identity).find(|m| in_account(m)),
    }
}

/// Decides `permission` at `project` (`None`: the account) for `subject`, on `eval`, the
/// evaluation of `index`'s account. Unknown accounts, members and projects are denials with a
/// reason, never errors: a check fails closed.
pub fn decide(
    index: &Index,
    eval: &AccountEvaluation,
    subject: Subject<'_>,
    permission: &str,
    project: Option<&str>,
) -> Decision {
    let key = &eval.key;
    if !eval.exists {
        return Decision::denied(None, format!("account {} not found", key.account));
    }
    let Some(member) = member_of(index, key, subject) else {
        let who = match subject {
            Subject::Member(m) => format!("member {m}"),
            Subject::Identity(i) => format!("no member with identity {i}"),
        };
        return Decision::denied(
            None,
            match subject {
                Subject::Member(_) => format!("{who} is not a member of account {}", key.account),
                Subject::Identity(_) => format!("{who} in account {}", key.account),
            },
        );
    };
    let ctx = Ctx::new(
        &key.namespace,
        index.namespace(&key.namespace),
        &key.account,
        Change::None,
        eval.at,
    );
    if let Some(p) = project
        && !ctx.projects().any(|x| x == p)
    {
        return Decision::denied(
            Some(member),
            format!("project {p} is not a project of account {}", key.account),
        );
    }
    let Some(verdict) = eval.members.get(member) else {
        return Decision::denied(
            Some(member),
            format!("member {member} is not a member of account {}", key.account),
        );
    };
    let perms = &verdict.access.permissions;
    let allowed = perms.account.iter().any(|x| x == permission)
        || project
            .and_then(|p| perms.projects.get(p))
            .is_some_and(|ps| ps.iter().any(|x| x == permission));
    if !allowed {
        let scope = project.map_or_else(|| "the account".to_owned(), |p| format!("project {p}"));
        return Decision::denied(
            Some(member),
            format!("member {member} does not hold {permission} on {scope}"),
        );
    }
    // A role that lists the permission itself needs no walk through its includes.
    let grants = |role: &str| {
        ctx.role(role).is_some_and(|r| {
            r.spec.permissions.iter().any(|p| p == permission)
                || r.metadata
                    .name
                    .as_deref()
                    .is_some_and(|name| ctx.resolve(name).permissions.contains(permission))
        })
    };
    let covers = |s: &GrantSource| s.project.is_none() || s.project.as_deref() == project;
    let via = if verdict.access.defaulted {
        // The same eligibility as effective access (R14): account scope, and the member's type.
        let member_type = ctx.member(member).map(|m| m.spec.member_type);
        ctx.default_roles()
            .into_iter()
            .filter(|r| {
                ctx.role(r).is_some_and(|r| {
                    r.spec.scope == RoleScope::Account
                        && member_type.is_none_or(|t| r.spec.member_types.contains(&t))
                })
            })
            .find(|r| grants(r))
            .map(|role| Via {
                binding: None,
                role: role.to_owned(),
                team: None,
                implicit: project.is_some(),
                default: true,
            })
    } else {
        // A project's own grant before an account-wide one.
        let mut covering = verdict.sources.iter().filter(|s| covers(s));
        let own = covering
            .clone()
            .find(|s| s.project.is_some() && grants(&s.role));
        own.or_else(|| covering.find(|s| grants(&s.role)))
            .map(|s| Via {
                binding: Some(s.binding.clone()),
                role: s.role.clone(),
                team: s.team.clone(),
                implicit: s.project.is_none() && project.is_some(),
                default: false,
            })
    };
    Decision {
        member: Some(member.to_owned()),
        allowed,
        via,
        reason: None,
    }
}
