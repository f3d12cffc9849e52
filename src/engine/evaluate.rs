//! Evaluation of one account: which bindings are accepted, which are redundant, who owns the
//! account, and what every member may do. Pure and deterministic: the same objects in any order
//! give the same result, and conflicts go to the older binding (creationTimestamp, then name).

use std::collections::BTreeMap;

use super::context::{Change, Ctx};
use super::effective::{self, Access, Held};
use super::index::{AccountKey, Index};
use super::rule::{Finding, Severity, Violation};
use super::rules::{exclusive, member_type, owner, redundant, reference, same_account, scope};
use super::slim::{Role, RoleBinding};
use crate::api::Kind;

/// The verdict on one binding.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingVerdict {
    pub member: String,
    /// `Err` carries the rule that keeps the binding from granting anything.
    pub accepted: Result<(), Violation>,
    /// R9: accepted, but grants nothing new.
    pub redundant: Option<Violation>,
}

impl BindingVerdict {
    /// The binding's findings; `redundant` is the account's R9 policy ([`redundant::severity`]).
    pub fn findings(&self, redundant: Severity) -> impl Iterator<Item = Finding> + '_ {
        let rejected = self
            .accepted
            .as_ref()
            .err()
            .map(|v| Finding::error(v.clone()));
        let redundant = self.redundant.as_ref().map(|v| Finding {
            violation: v.clone(),
            severity: redundant,
        });
        rejected.into_iter().chain(redundant)
    }
}

/// The verdict on one member of the account.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberVerdict {
    pub problem: Option<Violation>,
    pub access: Access,
}

/// Everything the controller writes and `check` reports for one account.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountEvaluation {
    pub key: AccountKey,
    /// Whether the Account object itself exists.
    pub exists: bool,
    /// The member bound by the accepted owner binding.
    pub owner: Option<String>,
    /// Problems of the Account object itself (R2 first).
    pub problems: Vec<Violation>,
    pub bindings: BTreeMap<String, BindingVerdict>,
    pub members: BTreeMap<String, MemberVerdict>,
    /// How the account's policy ranks a redundant binding (R9).
    pub redundant: Severity,
}

impl AccountEvaluation {
    /// Bindings that are not accepted.
    pub fn conflicts(&self) -> impl Iterator<Item = (&str, &Violation)> {
        self.bindings
            .iter()
            .filter_map(|(n, v)| v.accepted.as_ref().err().map(|e| (n.as_str(), e)))
    }

    /// Every finding on the account's objects, by kind and name: what `check` reports.
    pub fn findings(&self) -> Vec<(Kind, &str, Finding)> {
        let mut out: Vec<(Kind, &str, Finding)> = Vec::new();
        for problem in &self.problems {
            out.push((
                Kind::Account,
                &self.key.account,
                Finding::error(problem.clone()),
            ));
        }
        for (name, verdict) in &self.bindings {
            for finding in verdict.findings(self.redundant) {
                out.push((Kind::RoleBinding, name, finding));
            }
        }
        for (name, verdict) in &self.members {
            if let Some(problem) = &verdict.problem {
                out.push((Kind::Member, name, Finding::error(problem.clone())));
            }
        }
        out
    }
}

/// What a role grants and whether it is sound.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleEvaluation {
    pub effective_permissions: Vec<String>,
    pub bound_count: u32,
    pub problem: Option<Violation>,
}

/// One member's bindings, judged in age order.
pub(crate) struct MemberJudgement<'a> {
    pub verdicts: Vec<(&'a RoleBinding, Result<(), Violation>)>,
    pub held: Vec<Held<'a>>,
    pub redundant: BTreeMap<&'a str, Violation>,
}

/// Older first: creationTimestamp, then name. Objects not stored yet (no timestamp), and above
/// all the one a CREATE brings, are newest.
fn age_order(ctx: &Ctx<'_>, a: &RoleBinding, b: &RoleBinding) -> std::cmp::Ordering {
    let key = |x: &RoleBinding| {
        let name = x.metadata.name.as_deref().unwrap_or_default();
        let ts = x.metadata.creation_timestamp.as_ref();
        let arriving = ctx.change.creates(Kind::RoleBinding, name);
        (arriving, ts.is_none(), ts.cloned(), name.to_owned())
    };
    key(a).cmp(&key(b))
}

/// The checks one binding passes or fails on its own, before it meets the member's other bindings.
fn admissible<'a>(ctx: &Ctx<'a>, binding: &'a RoleBinding) -> Result<&'a Role, Violation> {
    let spec = &binding.spec;
    let name = binding.metadata.name.as_deref().unwrap_or_default();
    let account = ctx.account_name;
    ctx.account()
        .ok_or_else(|| reference::account_not_found(account))?;
    let role = ctx
        .role(&spec.role)
        .ok_or_else(|| reference::role_not_found(&spec.role))?;
    same_account::check_role(account, &spec.role, role)?;
    owner::check_name(name, account, &spec.role, role)?;
    scope::check(&spec.role, role, spec.project.as_deref())?;
    if let Some(project) = spec.project.as_deref().filter(|p| !ctx.has_project(p)) {
        return Err(reference::project_not_found(project, account));
    }
    let member = ctx
        .member(&spec.member)
        .ok_or_else(|| reference::member_not_found(&spec.member))?;
    same_account::check_member(account, &spec.member, member)?;
    member_type::check(&spec.member, member, &spec.role, role)?;
    Ok(role)
}

/// Judges all bindings of one member: each in age order, against those accepted before it (R5),
/// then the accepted ones against each other (R9).
pub(crate) fn judge_member<'a>(
    ctx: &Ctx<'a>,
    member: &str,
    mut bindings: Vec<&'a RoleBinding>,
) -> MemberJudgement<'a> {
    bindings.sort_by(|a, b| age_order(ctx, a, b));
    let mut held: Vec<Held<'a>> = Vec::new();
    let mut verdicts = Vec::with_capacity(bindings.len());
    for binding in bindings {
        let project = binding.spec.project.as_deref();
        let verdict = admissible(ctx, binding).and_then(|role| {
            exclusive::check(
                member,
                ctx.account_name,
                &binding.spec.role,
                role,
                project,
                &held,
            )?;
            held.push(Held {
                binding: binding.metadata.name.as_deref().unwrap_or_default(),
                role_name: &binding.spec.role,
                role,
                project,
                grants: ctx.resolve(&binding.spec.role),
            });
            Ok(())
        });
        verdicts.push((binding, verdict));
    }
    let redundant = redundant::find(member, &held);
    MemberJudgement {
        verdicts,
        held,
        redundant,
    }
}

impl<'a> MemberJudgement<'a> {
    /// The verdict on one of the judged bindings.
    fn verdict(
        &self,
        member: &str,
        binding: &RoleBinding,
        accepted: &Result<(), Violation>,
    ) -> BindingVerdict {
        let name = binding.metadata.name.as_deref().unwrap_or_default();
        BindingVerdict {
            member: member.to_owned(),
            accepted: accepted.clone(),
            redundant: self.redundant.get(name).cloned(),
        }
    }
}

/// Judges the member a binding names, with all of that member's bindings in the account: the
/// verdict of one binding is never read in isolation, so admission and evaluation agree.
pub(crate) fn binding_verdict(ctx: &Ctx<'_>, name: &str) -> Option<BindingVerdict> {
    let binding = ctx
        .binding(name)
        .filter(|b| b.spec.account == ctx.account_name)?;
    let member = binding.spec.member.as_str();
    let judged = judge_member(ctx, member, ctx.bindings_of_member(member));
    judged
        .verdicts
        .iter()
        .find(|(b, _)| b.metadata.name.as_deref() == Some(name))
        .map(|(b, accepted)| judged.verdict(member, b, accepted))
}

/// The owner binding of the account (`<account>-owner`, R1) and its verdict.
pub(crate) fn owner_verdict(ctx: &Ctx<'_>) -> Option<BindingVerdict> {
    binding_verdict(ctx, &owner::binding_name(ctx.account_name))
}

/// The member that owns the account: the one its owner binding names, if that binding is
/// accepted. Every rule that asks "who owns this account" asks this.
pub(crate) fn owner_of(ctx: &Ctx<'_>) -> Option<String> {
    owner_verdict(ctx)
        .filter(|v| v.accepted.is_ok())
        .map(|v| v.member)
}

/// Problems of the Account object itself: R2, and a successor role that does not exist (R16).
pub(crate) fn account_problems(ctx: &Ctx<'_>, owner: Option<&str>) -> Vec<Violation> {
    let Some(account) = ctx.account() else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if owner.is_none() {
        problems.push(owner::missing(ctx.account_name));
    }
    if let Some(successor) = account
        .spec
        .ownership
        .successor_role
        .as_deref()
        .filter(|r| ctx.role(r).is_none())
    {
        problems.push(reference::role_not_found(successor));
    }
    problems
}

/// A member's own problem: the account it names does not exist (R16).
pub(crate) fn member_problem(ctx: &Ctx<'_>) -> Option<Violation> {
    ctx.account()
        .is_none()
        .then(|| reference::account_not_found(ctx.account_name))
}

/// Evaluates one account as the index holds it.
pub fn evaluate_account(index: &Index, key: &AccountKey) -> AccountEvaluation {
    let ctx = Ctx::new(
        &key.namespace,
        index.namespace(&key.namespace),
        &key.account,
        Change::None,
    );
    evaluate_in(&ctx)
}

pub(crate) fn evaluate_in(ctx: &Ctx<'_>) -> AccountEvaluation {
    let mut eval = AccountEvaluation {
        key: AccountKey::new(ctx.namespace, ctx.account_name),
        exists: ctx.account().is_some(),
        owner: owner_of(ctx),
        problems: Vec::new(),
        bindings: BTreeMap::new(),
        members: BTreeMap::new(),
        redundant: redundant::severity(ctx.account()),
    };
    eval.problems = account_problems(ctx, eval.owner.as_deref());
    let mut held_by_member: BTreeMap<&str, Vec<Held<'_>>> = BTreeMap::new();
    for (member, bindings) in ctx.bindings_by_member() {
        let judged = judge_member(ctx, member, bindings);
        for (binding, accepted) in &judged.verdicts {
            let name = binding.metadata.name.clone().unwrap_or_default();
            eval.bindings
                .insert(name, judged.verdict(member, binding, accepted));
        }
        held_by_member.insert(member, judged.held);
    }
    let problem = member_problem(ctx);
    for name in ctx.members() {
        let member = ctx.member(name);
        let held = held_by_member.get(name).map_or(&[][..], Vec::as_slice);
        eval.members.insert(
            name.to_owned(),
            MemberVerdict {
                problem: problem.clone(),
                access: effective::access(ctx, member, held),
            },
        );
    }
    eval
}

/// Evaluates one role: its permissions after includes, and R12 and R16 problems.
pub fn evaluate_role(index: &Index, namespace: &str, name: &str) -> Option<RoleEvaluation> {
    let ns = index.namespace(namespace)?;
    let role = ns.role(name)?;
    let account = role.spec.account.as_deref().unwrap_or_default();
    role_evaluation(&Ctx::new(namespace, Some(ns), account, Change::None), name)
}

/// [`evaluate_role`] in a view; `ctx` is the role's account (empty for a shared role).
pub(crate) fn role_evaluation(ctx: &Ctx<'_>, name: &str) -> Option<RoleEvaluation> {
    let role = ctx.role(name)?;
    let name = role.metadata.name.as_deref().unwrap_or_default();
    let resolved = ctx.resolve(name);
    let missing_account = role
        .spec
        .account
        .as_deref()
        .filter(|a| ctx.account_named(a).is_none());
    Some(RoleEvaluation {
        effective_permissions: resolved
            .permissions
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
        bound_count: u32::try_from(ctx.bindings_of_role(name).len()).unwrap_or(u32::MAX),
        problem: resolved
            .problem
            .clone()
            .or_else(|| missing_account.map(reference::account_not_found)),
    })
}
