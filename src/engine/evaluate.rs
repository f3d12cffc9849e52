//! Evaluation of one account: which bindings are accepted, which are redundant, who owns the
//! account, and what every member may do. Pure and deterministic: the same objects in any order
//! give the same result, and conflicts go to the older binding (creationTimestamp, then name).

use std::collections::BTreeMap;

use super::context::{Change, Ctx};
use super::effective::{self, Access, Held};
use super::index::{AccountKey, Index};
use super::rule::Violation;
use super::rules::{exclusive, member_type, owner, redundant, reference, same_account, scope};
use super::slim::{Role, RoleBinding};

/// The verdict on one binding.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingVerdict {
    pub member: String,
    /// `Err` carries the rule that keeps the binding from granting anything.
    pub accepted: Result<(), Violation>,
    /// R9: accepted, but grants nothing new.
    pub redundant: Option<Violation>,
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
}

impl AccountEvaluation {
    /// Bindings that are not accepted.
    pub fn conflicts(&self) -> impl Iterator<Item = (&str, &Violation)> {
        self.bindings
            .iter()
            .filter_map(|(n, v)| v.accepted.as_ref().err().map(|e| (n.as_str(), e)))
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

/// Older first: creationTimestamp, then name. Objects not stored yet (no timestamp) are newest.
fn age_order(a: &RoleBinding, b: &RoleBinding) -> std::cmp::Ordering {
    let key = |x: &RoleBinding| {
        let ts = x.metadata.creation_timestamp.as_ref();
        (ts.is_none(), ts.cloned(), x.metadata.name.clone())
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
    bindings.sort_by(|a, b| age_order(a, b));
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
                grants: ctx.resolver.resolve(ctx, &binding.spec.role),
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
    let account = ctx.account();
    let mut eval = AccountEvaluation {
        key: AccountKey::new(ctx.namespace, ctx.account_name),
        exists: account.is_some(),
        owner: None,
        problems: Vec::new(),
        bindings: BTreeMap::new(),
        members: BTreeMap::new(),
    };
    let mut held_by_member: BTreeMap<&str, Vec<Held<'_>>> = BTreeMap::new();
    let owner_binding = owner::binding_name(ctx.account_name);
    for (member, bindings) in ctx.bindings_by_member() {
        let judged = judge_member(ctx, member, bindings);
        for (binding, accepted) in judged.verdicts {
            let name = binding.metadata.name.clone().unwrap_or_default();
            if accepted.is_ok() && name == owner_binding {
                eval.owner = Some(member.to_owned());
            }
            let redundant = judged.redundant.get(name.as_str()).cloned();
            eval.bindings.insert(
                name,
                BindingVerdict {
                    member: member.to_owned(),
                    accepted,
                    redundant,
                },
            );
        }
        held_by_member.insert(member, judged.held);
    }
    for name in ctx.members() {
        let member = ctx.member(name);
        let held = held_by_member.get(name).map_or(&[][..], Vec::as_slice);
        let problem = account
            .is_none()
            .then(|| reference::account_not_found(ctx.account_name));
        eval.members.insert(
            name.to_owned(),
            MemberVerdict {
                problem,
                access: effective::access(ctx, member, held),
            },
        );
    }
    if let Some(account) = account {
        if eval.owner.is_none() {
            eval.problems.push(owner::missing(ctx.account_name));
        }
        if let Some(successor) = account
            .spec
            .ownership
            .successor_role
            .as_deref()
            .filter(|r| ctx.role(r).is_none())
        {
            eval.problems.push(reference::role_not_found(successor));
        }
    }
    eval
}

/// Evaluates one role: its permissions after includes, and R12 and R16 problems.
pub fn evaluate_role(index: &Index, namespace: &str, name: &str) -> Option<RoleEvaluation> {
    let ns = index.namespace(namespace)?;
    let role = ns.role(name)?;
    let account = role.spec.account.as_deref().unwrap_or_default();
    let ctx = Ctx::new(namespace, Some(ns), account, Change::None);
    let resolved = ctx.resolver.resolve(&ctx, name);
    let missing_account = role
        .spec
        .account
        .as_deref()
        .filter(|a| ns.account(a).is_none());
    Some(RoleEvaluation {
        effective_permissions: resolved
            .permissions
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
        bound_count: u32::try_from(ns.bindings_of_role(name).count()).unwrap_or(u32::MAX),
        problem: resolved
            .problem
            .clone()
            .or_else(|| missing_account.map(reference::account_not_found)),
    })
}
