//! The admission entry point: `(operation, old object, new object, requester) → allow | deny |
//! warnings`, judged against the index as if the change were applied. The webhook calls it for
//! every request and `check --base` for every change between two trees.
//!
//! Dangling references are allowed with a warning (GitOps tools apply in their own order); illegal
//! combinations, malformed objects and transitions that break R3, R4, R10, R11 or R13 are denied.

use std::collections::BTreeSet;

use super::context::{Change, Ctx};
use super::effective::{self, Access};
use super::evaluate::{self, judge_member};
use super::index::{Index, Namespace};
use super::rule::{RuleId, Violation};
use super::rules::{delegated, exclusive, locked, owner, redundant, schema};
use super::slim::{Entry, Member, Role, RoleBinding};
use crate::api::{self, Kind, Object, RedundantPolicy};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// Who asks: the Kubernetes user from the AdmissionReview's `userInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requester {
    pub username: String,
    pub groups: Vec<String>,
}

/// One admission request, reduced to what the rules need.
#[derive(Clone, Copy, Debug)]
pub struct Review<'a> {
    pub operation: Operation,
    /// The object after the change; `None` on delete.
    pub object: Option<&'a Object>,
    /// The object before the change; `None` on create.
    pub old_object: Option<&'a Object>,
    pub requester: Option<&'a Requester>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow { warnings: Vec<Violation> },
    Deny(Violation),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// Judges one request.
pub fn admit(index: &Index, review: &Review<'_>) -> Decision {
    let mut warnings = Vec::new();
    match judge(index, review, &mut warnings) {
        Ok(()) => Decision::Allow { warnings },
        Err(denial) => Decision::Deny(denial),
    }
}

fn judge(
    index: &Index,
    review: &Review<'_>,
    warnings: &mut Vec<Violation>,
) -> Result<(), Violation> {
    let Some(subject) = review.object.or(review.old_object) else {
        return Ok(());
    };
    let old = review
        .old_object
        .filter(|_| review.operation == Operation::Update);
    if let Some(new) = review
        .object
        .filter(|_| review.operation != Operation::Delete)
    {
        schema::check(new, old)?;
    }
    let namespace = subject.namespace();
    let name = subject.name();
    let ns = index.namespace(&namespace);
    // The subject as the index would hold it; on create and update it is also the change.
    let entry = Entry::from(subject);
    let change = match review.object {
        Some(_) if review.operation != Operation::Delete => Change::Put(&entry),
        _ => Change::Remove(subject.kind(), &name),
    };
    match &entry {
        Entry::Account(_) => Ok(()),
        Entry::Member(member) => {
            let ctx = Ctx::new(&namespace, ns, &member.spec.account, change);
            delegation(&ctx, review, subject, None)?;
            match review.operation {
                Operation::Delete => member_kept(&ctx, &name, member),
                _ => Ok(()),
            }
        }
        Entry::Role(role) => {
            let ctx = Ctx::new(
                &namespace,
                ns,
                role.spec.account.as_deref().unwrap_or_default(),
                change,
            );
            match review.operation {
                Operation::Delete => role_deletable(&ctx, &name, role),
                _ => role_sound(&ctx, &name, role, warnings),
            }
        }
        Entry::RoleBinding(binding) => {
            let ctx = Ctx::new(&namespace, ns, &binding.spec.account, change);
            match review.operation {
                Operation::Delete => {
                    delegation(&ctx, review, subject, None)?;
                    binding_deletable(&ctx, &name, binding)
                }
                _ => {
                    let role = binding_admissible(&ctx, review, &name, binding, warnings)?;
                    delegation(&ctx, review, subject, role)
                }
            }
        }
    }
}

/// Whether the account of `ctx` exists and is not being deleted: only then is its owner kept (R3).
fn account_alive(ctx: &Ctx<'_>) -> bool {
    ctx.account()
        .is_some_and(|a| a.metadata.deletion_timestamp.is_none())
}

/// The owner binding of the account, if it binds an owner role.
fn owner_binding<'a>(ctx: &Ctx<'a>) -> Option<&'a RoleBinding> {
    ctx.ns
        .binding(&owner::binding_name(ctx.account_name))
        .filter(|b| {
            b.spec.account == ctx.account_name
                && ctx.ns.role(&b.spec.role).is_some_and(|r| r.spec.owner)
        })
}

/// Accepted bindings and access of one member, as the index holds them plus the change.
fn member_access<'a>(ctx: &Ctx<'a>, member: &'a str) -> (Vec<effective::Held<'a>>, Access) {
    let held = judge_member(ctx, member, ctx.bindings_of_member(member)).held;
    let access = effective::access(ctx, ctx.member(member), &held);
    (held, access)
}

fn binding_admissible<'a>(
    ctx: &Ctx<'a>,
    review: &Review<'a>,
    name: &str,
    binding: &'a RoleBinding,
    warnings: &mut Vec<Violation>,
) -> Result<Option<&'a Role>, Violation> {
    let spec = &binding.spec;
    let member = spec.member.as_str();
    let project = spec.project.as_deref();
    let others: Vec<&RoleBinding> = ctx
        .bindings_of_member(member)
        .into_iter()
        .filter(|b| b.metadata.name.as_deref() != Some(name))
        .collect();
    let judged = judge_member(ctx, member, others);
    let role = match evaluate_single(ctx, binding) {
        Ok(role) => role,
        Err(v) if v.rule == RuleId::R16 => {
            warnings.push(v);
            return Ok(ctx.role(&spec.role));
        }
        Err(v) => return Err(v),
    };
    exclusive::check(
        member,
        ctx.account_name,
        &spec.role,
        role,
        project,
        &judged.held,
    )?;
    let grants = ctx.resolver.resolve(ctx, &spec.role);
    let new = effective::Held {
        binding: name,
        role_name: &spec.role,
        role,
        project,
        grants,
    };
    if let Some(other) = judged
        .held
        .iter()
        .find(|g| g.covers(project) && new.grants.permissions.is_subset(&g.grants.permissions))
    {
        let violation = redundant::redundant(member, &new, other);
        match ctx.account().map(|a| a.spec.redundant_bindings) {
            Some(RedundantPolicy::Deny) => return Err(violation),
            _ => warnings.push(violation),
        }
    }
    // R4: moving the owner binding to another member.
    if let (Operation::Update, Some(Object::RoleBinding(old))) =
        (review.operation, review.old_object)
        && old.spec.member != spec.member
        && role.spec.owner
    {
        owner::check_transfer(
            ctx.account_name,
            ctx.account(),
            &old.spec.member,
            member,
            |successor| {
                // "Already holds": before the change, so the owner binding being moved (whose
                // role may include the successor role) does not count for its new member.
                let before = Ctx::new(ctx.namespace, Some(ctx.ns), ctx.account_name, Change::None);
                let (held, _) = member_access(&before, member);
                held.iter()
                    .any(|h| h.project.is_none() && h.grants.roles.contains(successor))
            },
        )?;
    }
    Ok(Some(role))
}

/// The binding's own checks (R1, R6, R7, R8, R16) through the same code the evaluation uses.
fn evaluate_single<'a>(ctx: &Ctx<'a>, binding: &'a RoleBinding) -> Result<&'a Role, Violation> {
    let judged = judge_member(ctx, &binding.spec.member, vec![binding]);
    match judged.verdicts.into_iter().next() {
        Some((_, Err(v))) => Err(v),
        _ => judged
            .held
            .first()
            .map(|h| h.role)
            .ok_or_else(|| Violation::new(RuleId::R16, "the binding cannot be resolved")),
    }
}

fn binding_deletable(ctx: &Ctx<'_>, name: &str, binding: &RoleBinding) -> Result<(), Violation> {
    let is_owner_binding = name == owner::binding_name(ctx.account_name)
        && ctx
            .ns
            .role(&binding.spec.role)
            .is_some_and(|r| r.spec.owner);
    if is_owner_binding && account_alive(ctx) {
        return Err(owner::kept_binding(
            name,
            &binding.spec.member,
            ctx.account_name,
        ));
    }
    Ok(())
}

fn member_kept(ctx: &Ctx<'_>, name: &str, member: &Member) -> Result<(), Violation> {
    if account_alive(ctx) && owner_binding(ctx).is_some_and(|b| b.spec.member == name) {
        return Err(owner::kept_member(name, &member.spec.account));
    }
    Ok(())
}

/// The owner bindings that name `role`, with the accounts they keep owned.
fn owner_bindings_of<'a>(ns: &'a Namespace, role: &str) -> impl Iterator<Item = &'a RoleBinding> {
    ns.bindings_of_role(role)
        .filter_map(|b| ns.binding(b))
        .filter(move |b| {
            b.metadata.name.as_deref() == Some(owner::binding_name(&b.spec.account).as_str())
                && ns
                    .account(&b.spec.account)
                    .is_some_and(|a| a.metadata.deletion_timestamp.is_none())
        })
}

fn role_deletable(ctx: &Ctx<'_>, name: &str, role: &Role) -> Result<(), Violation> {
    if role.spec.owner
        && let Some(b) = owner_bindings_of(ctx.ns, name).next()
    {
        let binding = b.metadata.name.as_deref().unwrap_or_default();
        return Err(owner::kept_role(
            name,
            binding,
            &b.spec.account,
            "it cannot be deleted",
        ));
    }
    if role.spec.locked {
        let bound: Vec<&str> = ctx.ns.bindings_of_role(name).collect();
        if let Some(first) = bound.first() {
            return Err(locked::bound(name, bound.len(), first));
        }
    }
    Ok(())
}

fn role_sound<'a>(
    ctx: &Ctx<'a>,
    name: &'a str,
    role: &Role,
    warnings: &mut Vec<Violation>,
) -> Result<(), Violation> {
    let resolved = ctx.resolver.resolve(ctx, name);
    if let Some(problem) = &resolved.problem {
        // A missing include may still arrive; a cycle or an invisible role never heals.
        match problem.may_heal() {
            true => warnings.push(problem.clone()),
            false => return Err(problem.clone()),
        }
    }
    let Some(ns_role) = ctx.ns.role(name).filter(|r| r.spec.owner) else {
        return Ok(());
    };
    for b in owner_bindings_of(ctx.ns, name) {
        let binding = b.metadata.name.as_deref().unwrap_or_default();
        if !role.spec.owner {
            return Err(owner::kept_role(
                name,
                binding,
                &b.spec.account,
                "it must stay an owner role",
            ));
        }
        let member_type = ctx.ns.member(&b.spec.member).map(|m| m.spec.member_type);
        if let Some(t) = member_type.filter(|t| {
            ns_role.spec.member_types.contains(t) && !role.spec.member_types.contains(t)
        }) {
            let why = format!(
                "owner {} is of type {t}, which the new memberTypes exclude",
                b.spec.member
            );
            return Err(owner::kept_role(name, binding, &b.spec.account, &why));
        }
    }
    Ok(())
}

/// R13 for requests on members and bindings from a requester that is a member of the account.
fn delegation<'a>(
    ctx: &Ctx<'a>,
    review: &Review<'a>,
    subject: &'a Object,
    role: Option<&'a Role>,
) -> Result<(), Violation> {
    let Some(requester) = review.requester else {
        return Ok(());
    };
    let current = Ctx::new(ctx.namespace, Some(ctx.ns), ctx.account_name, Change::None);
    let me = current
        .ns
        .members_with_identity(&requester.username)
        .find(|m| {
            current
                .member(m)
                .is_some_and(|m| m.spec.account == ctx.account_name)
        });
    let Some(me) = me else { return Ok(()) };
    let (_, access) = member_access(&current, me);
    delegated::check_admin(
        &requester.username,
        me,
        ctx.account_name,
        current.account(),
        &access,
    )?;
    let Object::RoleBinding(binding) = subject else {
        return Ok(());
    };
    for b in [review.old_object, review.object].into_iter().flatten() {
        if let Object::RoleBinding(b) = b {
            delegated::check_not_own(&requester.username, me, &binding_name(b), &b.spec.member)?;
        }
    }
    if let (Some(role_name), Some(_)) = (review.object.map(|_| binding.spec.role.as_str()), role) {
        let project = binding.spec.project.as_deref();
        let grants: BTreeSet<&str> = ctx
            .resolver
            .resolve(ctx, role_name)
            .permissions
            .iter()
            .copied()
            .collect();
        delegated::check_no_escalation(
            me,
            role_name,
            project,
            &grants,
            &access.permissions_at(project),
        )?;
    }
    Ok(())
}

fn binding_name(b: &api::RoleBinding) -> String {
    b.metadata.name.clone().unwrap_or_default()
}

/// Whether `kind` is one the webhook judges.
pub fn judged_kind(kind: Kind) -> bool {
    Kind::ALL.contains(&kind)
}

pub use evaluate::evaluate_account;
