//! The decision API's question, "may this member use permission P at this scope?". `allowed` is
//! what the member's effective permissions say (account ∪ projects[p], exactly what its status
//! shows), and `via` names one grant that carries it. Two ways to the same answer: from the
//! account's evaluation when one is at hand ([`decide`]), or from the member's own grants alone
//! ([`decide_member`]: the same judgement the evaluation makes of that member, R5 included,
//! without judging the rest of the account), so a check never evaluates a whole account.

use serde::Serialize;

use k8s_openapi::jiff::Timestamp;

use super::context::Ctx;
use super::effective::Held;
use super::evaluate::{AccountEvaluation, GrantSource, judge_member};
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

/// The checks both ways share: the account exists, the subject is one of its Members, the project
/// is one of its projects. The view of the account at `now`, and the member.
fn prelude<'a>(
    index: &'a Index,
    key: &'a AccountKey,
    now: Timestamp,
    subject: Subject<'_>,
    project: Option<&str>,
) -> Result<(Ctx<'a>, &'a str), Box<Decision>> {
    let ctx = Ctx::stored(index, key, now);
    if ctx.account().is_none() {
        return Err(Box::new(Decision::denied(
            None,
            format!("account {} not found", key.account),
        )));
    }
    let Some(member) = member_of(index, key, subject) else {
        return Err(Box::new(Decision::denied(
            None,
            match subject {
                Subject::Member(m) => {
                    format!("member {m} is not a member of account {}", key.account)
                }
                Subject::Identity(i) => {
                    format!("no member with identity {i} in account {}", key.account)
                }
            },
        )));
    };
    if let Some(p) = project
        && !ctx.projects().any(|x| x == p)
    {
        return Err(Box::new(Decision::denied(
            Some(member),
            format!("project {p} is not a project of account {}", key.account),
        )));
    }
    Ok((ctx, member))
}

fn not_held(member: &str, permission: &str, project: Option<&str>) -> Decision {
    let scope = project.map_or_else(|| "the account".to_owned(), |p| format!("project {p}"));
    Decision::denied(
        Some(member),
        format!("member {member} does not hold {permission} on {scope}"),
    )
}

/// Whether `role` grants `permission`: listed by itself (no walk through its includes) or by a
/// role it includes.
fn grants(ctx: &Ctx<'_>, role: &str, permission: &str) -> bool {
    ctx.role(role).is_some_and(|r| {
        r.spec.permissions.iter().any(|p| p == permission)
            || r.metadata
                .name
                .as_deref()
                .is_some_and(|name| ctx.resolve(name).permissions.contains(permission))
    })
}

/// The default role (R14) that grants `permission` to a member holding the defaults: the same
/// eligibility as effective access (account scope, the member's type).
fn default_via(
    ctx: &Ctx<'_>,
    member: &str,
    permission: &str,
    project: Option<&str>,
) -> Option<Via> {
    let member_type = ctx.member(member).map(|m| m.spec.member_type);
    ctx.default_roles()
        .into_iter()
        .filter(|r| {
            ctx.role(r).is_some_and(|r| {
                r.spec.scope == RoleScope::Account
                    && member_type.is_none_or(|t| r.spec.member_types.contains(&t))
            })
        })
        .find(|r| grants(ctx, r, permission))
        .map(|role| Via {
            binding: None,
            role: role.to_owned(),
            team: None,
            implicit: project.is_some(),
            default: true,
        })
}

/// The grant, of those covering the scope asked about, that an answer names: a project's own
/// grant before an account-wide one, each in the order the evaluation judged them (oldest first).
fn first_via<'s, T: 's>(
    covering: impl Iterator<Item = &'s T> + Clone,
    project_of: impl Fn(&T) -> Option<&str>,
    carries: impl Fn(&T) -> bool,
) -> Option<&'s T> {
    let mut all = covering.clone();
    let own = covering
        .clone()
        .find(|g| project_of(g).is_some() && carries(g));
    own.or_else(|| all.find(|g| carries(g)))
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
    let (ctx, member) = match prelude(index, &eval.key, eval.at, subject, project) {
        Ok(found) => found,
        Err(denied) => return *denied,
    };
    let Some(verdict) = eval.members.get(member) else {
        return not_held(member, permission, project);
    };
    let perms = &verdict.access.permissions;
    let allowed = perms.account.iter().any(|x| x == permission)
        || project
            .and_then(|p| perms.projects.get(p))
            .is_some_and(|ps| ps.iter().any(|x| x == permission));
    if !allowed {
        return not_held(member, permission, project);
    }
    let via = if verdict.access.defaulted {
        default_via(&ctx, member, permission, project)
    } else {
        let covering = verdict
            .sources
            .iter()
            .filter(|s| s.project.is_none() || s.project.as_deref() == project);
        first_via(
            covering,
            |s: &GrantSource| s.project.as_deref(),
            |s| grants(&ctx, &s.role, permission),
        )
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

/// The same decision as [`decide`] on the evaluation of the account at `now`, from the member's
/// own grants: judged as the evaluation judges them (age order, R5 against the older accepted
/// ones, R7, R8, R16), active at `now` (R18), else the default roles (R14); an account-level grant
/// holds on every project (R15).
pub fn decide_member(
    index: &Index,
    key: &AccountKey,
    now: Timestamp,
    subject: Subject<'_>,
    permission: &str,
    project: Option<&str>,
) -> Decision {
    let (ctx, member) = match prelude(index, key, now, subject, project) {
        Ok(found) => found,
        Err(denied) => return *denied,
    };
    let judged = judge_member(&ctx, member);
    let active: Vec<&Held<'_>> = judged.held.iter().filter(|h| h.active(now)).collect();
    let via = if active.is_empty() {
        default_via(&ctx, member, permission, project)
    } else {
        first_via(
            active.iter().copied().filter(|h| h.covers(project)),
            |h: &Held<'_>| h.project,
            |h| h.grants.permissions.contains(permission),
        )
        .map(|h| Via {
            binding: Some(h.binding.to_owned()),
            role: h.role_name.to_owned(),
            team: h.team.map(str::to_owned),
            implicit: h.project.is_none() && project.is_some(),
            default: false,
        })
    };
    match via {
        Some(via) => Decision {
            member: Some(member.to_owned()),
            allowed: true,
            via: Some(via),
            reason: None,
        },
        None => not_held(member, permission, project),
    }
}
