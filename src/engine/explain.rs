//! `explain` and `who-can`: why a member holds what the evaluation says it holds. Everything here
//! is read off [`AccountEvaluation`] (accepted and refused grants, effective access) and off role
//! resolution; the only thing computed anew is the `includes` chain that leads to each role, and
//! the winner of an R5 refusal, found by asking the R5 rule itself.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::context::Ctx;
use super::effective::Held;
use super::evaluate::{AccountEvaluation, GrantSource};
use super::index::{AccountKey, Index};
use super::rule::RuleId;
use super::rules::window::Window;
use super::rules::{exclusive, includes};
use crate::api::RoleScope;

/// One way a member holds a role: an accepted binding (direct or through a team), or a default
/// role (R14) when no binding of theirs is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantPath {
    /// `None` for a default role.
    pub binding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The role the binding names (or the default role).
    pub role: String,
    /// The binding's project; `None` at account scope, which reaches every project (R15).
    pub project: Option<String>,
    /// Held because no binding is accepted (R14).
    pub default: bool,
    /// When the grant ends (R18): `spec.validUntil` of its binding, RFC 3339.
    #[serde(rename = "validUntil", skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// Every role reached from `role` through `includes`, with the chain that reaches it.
    pub reached: Vec<ReachedRole>,
}

impl GrantPath {
    /// Whether the path applies at `project` (`None`: the account).
    pub fn covers(&self, project: Option<&str>) -> bool {
        self.project.is_none() || self.project.as_deref() == project
    }

    /// The first reached role (shortest `includes` chain) that grants `permission` itself.
    pub fn granting(&self, permission: &str) -> Option<&ReachedRole> {
        self.reached
            .iter()
            .find(|r| r.permissions.iter().any(|p| p == permission))
    }
}

/// A role reached from a bound role, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReachedRole {
    pub role: String,
    /// The `includes` steps from the bound role to this one, both ends included.
    pub chain: Vec<String>,
    /// The role's own permissions (not those of the roles it includes).
    pub permissions: Vec<String>,
}

/// A grant that reaches the member but gives it nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefusedGrant {
    pub binding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub role: String,
    pub project: Option<String>,
    pub rule: RuleId,
    pub message: String,
    /// For an R5 refusal: the older accepted binding that wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
}

/// Everything about one member of one account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub namespace: String,
    pub account: String,
    pub member: String,
    pub owner: bool,
    /// The member holds the default roles (R14).
    pub defaulted: bool,
    /// Per project with the account-level access repeated (`Access::expanded`), unlike a
    /// Member's status, which states it once.
    pub roles: crate::api::ScopedNames,
    pub permissions: crate::api::ScopedNames,
    pub paths: Vec<GrantPath>,
    pub refused: Vec<RefusedGrant>,
    /// The account's projects.
    #[serde(skip)]
    pub projects: Vec<String>,
}

/// The answer to "may the member use `permission` at `project`?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub member: String,
    pub permission: String,
    pub project: Option<String>,
    /// What the evaluation's effective permissions say.
    pub allowed: bool,
    /// The paths that grant it, each with the role that carries the permission.
    pub through: Vec<Through>,
}

/// One path that grants a permission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Through {
    pub binding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub role: String,
    pub project: Option<String>,
    pub default: bool,
    /// An account-level grant asked about at a project (R15).
    pub implicit: bool,
    /// The `includes` chain from the bound role to the role that lists the permission.
    pub chain: Vec<String>,
}

/// Why a question cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("member {member} is not a member of account {account}")]
    NoMember { member: String, account: String },
    #[error("project {project} is not a project of account {account}")]
    NoProject { project: String, account: String },
}

/// Explains one member of an evaluated account.
pub fn explain(
    index: &Index,
    eval: &AccountEvaluation,
    member: &str,
) -> Result<Explanation, Error> {
    let key = &eval.key;
    let verdict = eval.members.get(member).ok_or_else(|| Error::NoMember {
        member: member.to_owned(),
        account: key.account.clone(),
    })?;
    let ctx = ctx(index, eval);
    let mut paths: Vec<GrantPath> = verdict
        .sources
        .iter()
        .map(|s| path(&ctx, s, false))
        .collect();
    // The evaluation lists grants oldest first (R5 judges in that order); shown by scope and
    // name, so the answer does not depend on which second each binding was created in (offline
    // manifests carry no creationTimestamp; a cluster's objects do).
    paths.sort_by(|a, b| {
        (&a.project, &a.binding, &a.team, &a.role).cmp(&(&b.project, &b.binding, &b.team, &b.role))
    });
    if verdict.access.defaulted {
        let member_type = ctx.member(member).map(|m| m.spec.member_type);
        for name in ctx.default_roles() {
            // The same eligibility as effective access: account scope, and the member's type.
            let Some(role) = ctx.role(name) else { continue };
            let eligible = member_type.is_none_or(|t| role.spec.member_types.contains(&t));
            if eligible && role.spec.scope == RoleScope::Account {
                let source = GrantSource {
                    binding: String::new(),
                    team: None,
                    role: name.to_owned(),
                    project: None,
                };
                paths.push(path(&ctx, &source, true));
            }
        }
    }
    let mut refused: Vec<RefusedGrant> = verdict
        .refused
        .iter()
        .map(|(s, v)| RefusedGrant {
            binding: s.binding.clone(),
            team: s.team.clone(),
            role: s.role.clone(),
            project: s.project.clone(),
            rule: v.rule,
            message: v.message.clone(),
            winner: (v.rule == RuleId::R5)
                .then(|| winner(&ctx, member, s, &verdict.sources))
                .flatten(),
        })
        .collect();
    // Accepted grants outside their window give nothing now (R18): not a source, not refused.
    for b in ctx.grants_of_member(member) {
        let name = b.metadata.name.as_deref().unwrap_or_default();
        let inactive = eval.bindings.get(name).filter(|v| v.accepted.is_ok());
        if let Some(v) = inactive.and_then(|v| v.inactive.as_ref()) {
            refused.push(RefusedGrant {
                binding: name.to_owned(),
                team: b.spec.team.as_ref().map(ToString::to_string),
                role: b.spec.role.to_string(),
                project: b.spec.project.as_ref().map(ToString::to_string),
                rule: v.rule,
                message: v.message.clone(),
                winner: None,
            });
        }
    }
    refused.sort_by(|a, b| {
        (&a.project, &a.binding, &a.team, &a.role).cmp(&(&b.project, &b.binding, &b.team, &b.role))
    });
    let projects: Vec<String> = ctx.projects().map(str::to_owned).collect();
    let (roles, permissions) = verdict.access.expanded(projects.iter().map(String::as_str));
    Ok(Explanation {
        namespace: key.namespace.clone(),
        account: key.account.clone(),
        member: member.to_owned(),
        owner: eval.owner.as_deref() == Some(member),
        defaulted: verdict.access.defaulted,
        roles,
        permissions,
        paths,
        refused,
        projects,
    })
}

/// Whether the explained member holds `permission` at `project`, and through what.
pub fn can(
    explanation: &Explanation,
    eval: &AccountEvaluation,
    permission: &str,
    project: Option<&str>,
) -> Result<Answer, Error> {
    check_project(&explanation.projects, &eval.key, project)?;
    let allowed = eval
        .members
        .get(&explanation.member)
        .is_some_and(|v| v.access.permissions_at(project).contains(permission));
    let through = explanation
        .paths
        .iter()
        .filter(|p| p.covers(project))
        .filter_map(|p| {
            let role = p.granting(permission)?;
            Some(Through {
                binding: p.binding.clone(),
                team: p.team.clone(),
                role: p.role.clone(),
                project: p.project.clone(),
                default: p.default,
                implicit: p.project.is_none() && project.is_some(),
                chain: role.chain.clone(),
            })
        })
        .collect();
    Ok(Answer {
        member: explanation.member.clone(),
        permission: permission.to_owned(),
        project: project.map(str::to_owned),
        allowed,
        through,
    })
}

/// The members of the account that hold `permission` at `project`, each with its paths.
pub fn who_can(
    index: &Index,
    eval: &AccountEvaluation,
    permission: &str,
    project: Option<&str>,
) -> Result<Vec<Answer>, Error> {
    let projects: Vec<String> = ctx(index, eval).projects().map(str::to_owned).collect();
    check_project(&projects, &eval.key, project)?;
    let mut out = Vec::new();
    for member in eval.members.keys() {
        let explanation = explain(index, eval, member)?;
        let answer = can(&explanation, eval, permission, project)?;
        if answer.allowed {
            out.push(answer);
        }
    }
    Ok(out)
}

/// The accounts of the index that have a member of this name.
pub fn accounts_of_member(index: &Index, member: &str) -> Vec<AccountKey> {
    index
        .accounts()
        .filter(|k| {
            index
                .namespace(&k.namespace)
                .and_then(|ns| ns.member(member))
                .is_some_and(|m| m.spec.account == k.account)
        })
        .collect()
}

fn ctx<'a>(index: &'a Index, eval: &'a AccountEvaluation) -> Ctx<'a> {
    Ctx::stored(index, &eval.key, eval.at)
}

/// The window of a binding by name: open for a default role or a binding that is gone.
fn window_of(ctx: &Ctx<'_>, binding: &str) -> Window {
    ctx.binding(binding)
        .map(|b| Window::of(&b.spec))
        .unwrap_or_default()
}

fn check_project(
    projects: &[String],
    key: &AccountKey,
    project: Option<&str>,
) -> Result<(), Error> {
    match project {
        Some(p) if !projects.iter().any(|x| x == p) => Err(Error::NoProject {
            project: p.to_owned(),
            account: key.account.clone(),
        }),
        _ => Ok(()),
    }
}

/// The path of one grant: the roles its role reaches (as role resolution found them) and the
/// shortest `includes` chain to each.
fn path(ctx: &Ctx<'_>, source: &GrantSource, default: bool) -> GrantPath {
    let resolved = ctx
        .role(&source.role)
        .and_then(|r| r.metadata.name.as_deref())
        .map(|name| ctx.resolve(name));
    let resolved = resolved.as_ref().map(|r| &r.roles);
    let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut queue: VecDeque<(String, Vec<String>)> = VecDeque::new();
    queue.push_back((source.role.clone(), vec![source.role.clone()]));
    while let Some((name, chain)) = queue.pop_front() {
        if chains.contains_key(&name) || !resolved.is_some_and(|r| r.contains(name.as_str())) {
            continue;
        }
        let Some(role) = ctx.role(&name) else {
            continue;
        };
        for next in &role.spec.includes {
            let visible = ctx.role(next).is_some_and(|t| includes::visible(role, t));
            if visible && !chains.contains_key(next) {
                let mut longer = chain.clone();
                longer.push(next.clone());
                queue.push_back((next.clone(), longer));
            }
        }
        order.push(name.clone());
        chains.insert(name, chain);
    }
    let reached = order
        .into_iter()
        .filter_map(|name| {
            let role = ctx.role(&name)?;
            let chain = chains.remove(&name)?;
            Some(ReachedRole {
                role: name,
                chain,
                permissions: role.spec.permissions.clone(),
            })
        })
        .collect();
    GrantPath {
        binding: (!default).then(|| source.binding.clone()),
        team: source.team.clone(),
        role: source.role.clone(),
        project: source.project.clone(),
        default,
        valid_until: (!default)
            .then(|| window_of(ctx, &source.binding).until)
            .flatten()
            .map(|t| t.to_string()),
        reached,
    }
}

/// The accepted grant that makes R5 refuse `refused`: the first (oldest) one that the R5 rule,
/// asked about it alone, rejects the refused grant against.
fn winner(
    ctx: &Ctx<'_>,
    member: &str,
    refused: &GrantSource,
    accepted: &[GrantSource],
) -> Option<String> {
    let role = ctx.role(&refused.role)?;
    accepted.iter().find_map(|s| {
        let held = Held {
            binding: &s.binding,
            team: s.team.as_deref(),
            role_name: &s.role,
            role: ctx.role(&s.role)?,
            project: s.project.as_deref(),
            grants: std::rc::Rc::default(),
            window: window_of(ctx, &s.binding),
        };
        exclusive::check(
            member,
            ctx.account_name,
            &refused.role,
            role,
            refused.project.as_deref(),
            &window_of(ctx, &refused.binding),
            std::slice::from_ref(&held),
        )
        .is_err()
        .then(|| s.binding.clone())
    })
}
