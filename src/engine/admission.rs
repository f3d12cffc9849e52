//! The admission entry point: `(operation, old object, new object, requester) → allow | deny |
//! warnings`. The webhook calls it for every request and `check --base` for every change between
//! two trees.
//!
//! Admission *is* evaluation: the change is laid over the index, the evaluation judges what it
//! touches (the member a binding names, the account, the role), and the verdict the controller
//! would write for the changed object is the decision. A finding that heals when a missing object
//! arrives (R2, R16, a missing include) only warns, since GitOps tools apply in their own order.
//! Only the transition rules are extra (R3, R4, R10 deletion, R11 in CEL, R13), each judged by its
//! predicate in `rules/`. A change is denied only for what it makes worse: an update that leaves
//! `spec` alone is allowed, and so is one that still breaks a rule the old object broke the same
//! way (CRD validation ratcheting).

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;

use super::context::{Change, Ctx};
use super::effective::{self, Access};
use super::evaluate::{
    account_problems, binding_verdict, judge_member, member_problem, owner_of, owner_verdict,
    reaches_member, role_evaluation, team_verdict,
};
use super::index::Index;
use super::rule::{Finding, Severity, Violation};
use super::rules::window::Window;
use super::rules::{delegated, locked, owner, redundant, schema};
use super::slim::{Entry, RoleBinding, Team};
use crate::api::{Kind, Object, Subject};

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

/// Who still has to run the CRDs' own CEL rules (R10, R11, and the shapes of R6, R14, R17, R18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaRules {
    /// Offline (`check`): nothing else runs them, so the decision does.
    Evaluate,
    /// Behind the API server, which validates an object against its CRD's schema and CEL rules
    /// before it calls validating webhooks: every review that reaches the webhook passed them, and
    /// one that did not was refused with the same rule id and message.
    Enforced,
}

/// Judges one request at the instant `now` (R18: the caller's clock; the engine reads none),
/// the CRDs' CEL rules included.
pub fn admit(index: &Index, review: &Review<'_>, now: Timestamp) -> Decision {
    admit_with(index, review, now, SchemaRules::Evaluate)
}

/// Judges one request as [`admit`] does, leaving the CEL rules to whoever `schema` says.
pub fn admit_with(
    index: &Index,
    review: &Review<'_>,
    now: Timestamp,
    schema: SchemaRules,
) -> Decision {
    let mut warnings = Vec::new();
    match judge(index, review, now, schema, &mut warnings) {
        Ok(()) => Decision::Allow { warnings },
        Err(denial) => Decision::Deny(denial),
    }
}

fn judge(
    index: &Index,
    review: &Review<'_>,
    now: Timestamp,
    schema: SchemaRules,
    warnings: &mut Vec<Violation>,
) -> Result<(), Violation> {
    let (new, old) = match review.operation {
        Operation::Create => (review.object, None),
        Operation::Update => (review.object, review.old_object),
        Operation::Delete => (None, review.old_object.or(review.object)),
    };
    let Some(subject) = new.or(old) else {
        return Ok(());
    };
    let new_entry = new.map(Entry::from);
    let old_entry = old.map(Entry::from);
    // Labels, annotations, finalizers, owner references, a deletion finishing: no rule reads them.
    if let (Some(n), Some(o)) = (&new_entry, &old_entry)
        && n.same_spec(o)
    {
        return Ok(());
    }
    if let Some(n) = new.filter(|_| schema == SchemaRules::Evaluate)
        && let Err(v) = schema::check(n, old)
    {
        let was: Vec<Finding> = old
            .and_then(|o| schema::check(o, None).err())
            .map(Finding::error)
            .into_iter()
            .collect();
        ratchet(Finding::error(v), &was, warnings)?;
    }
    let namespace = subject.namespace();
    let name = subject.name();
    let Some(entry) = new_entry.as_ref().or(old_entry.as_ref()) else {
        return Ok(());
    };
    let account = account_of(entry);
    let ns = index.namespace(&namespace);
    let after = match &new_entry {
        Some(e) if old_entry.is_none() => Change::Create(e),
        Some(e) => Change::Put(e),
        None => Change::Remove(subject.kind(), &name),
    };
    let before = old_entry.as_ref().map_or(Change::None, Change::Put);
    let before = Ctx::new(&namespace, ns, account, before, now);
    let after = Ctx::new(&namespace, ns, account, after, now);

    delegation(&before, &after, review, entry)?;
    owner_kept(&before, &after, entry)?;
    if let (Some(Entry::RoleBinding(o)), Some(Entry::RoleBinding(n))) = (&old_entry, &new_entry)
        && let (Some(from), Some(to)) = (o.spec.member_name(), n.spec.member_name())
    {
        transfer(&before, from, to, entry.name())?;
    }
    if let Some(Entry::Team(team)) = &new_entry {
        let old = match &old_entry {
            Some(Entry::Team(o)) => Some(o),
            _ => None,
        };
        for member in joining(team, old) {
            joins(&before, &after, member, warnings)?;
        }
    }
    if let (Some(Entry::RoleBinding(o)), Some(Entry::RoleBinding(n))) = (&old_entry, &new_entry)
        && Window::of(&o.spec) != Window::of(&n.spec)
    {
        // R5 over windows (R18): a widened window can push another member's newer exclusive
        // grant out, so every member the binding reaches is judged like one joining a team.
        let reached = match n.spec.subject() {
            Some(Subject::Member(m)) => vec![m],
            Some(Subject::Team(t)) => after.team_members(t),
            None => Vec::new(),
        };
        for member in reached {
            joins(&before, &after, member, warnings)?;
        }
    }
    if let (Entry::Role(role), None) = (entry, &new_entry) {
        locked::check_delete(&name, role, &before.bindings_of_role(&name))?;
    }
    let Some(changed) = &new_entry else {
        return Ok(());
    };
    let findings = verdict(&after, changed);
    // The old object's verdict only matters to ratchet a denial: most changes are allowed, and
    // judging the state before costs as much as judging the state after.
    let was = match &old_entry {
        Some(o) if findings.iter().any(Finding::denies) => verdict(&before, o),
        _ => Vec::new(),
    };
    for finding in findings {
        ratchet(finding, &was, warnings)?;
    }
    Ok(())
}

/// Denies an error, unless it heals by itself (a warning then) or the old object already broke
/// the rule the same way (ratcheting: the change makes nothing worse, so it is only a warning).
fn ratchet(
    finding: Finding,
    was: &[Finding],
    warnings: &mut Vec<Violation>,
) -> Result<(), Violation> {
    let denies = finding.denies();
    let violation = finding.violation;
    let already = was
        .iter()
        .any(|w| w.severity == Severity::Error && w.violation.same_kind(&violation));
    if denies && !already {
        return Err(violation);
    }
    warnings.push(violation);
    Ok(())
}

/// The account an object belongs to: its own name for an Account, the one it names otherwise
/// (empty for a shared role).
fn account_of(entry: &Entry) -> &str {
    match entry {
        Entry::Account(_) => entry.name(),
        Entry::Member(m) => &m.spec.account,
        Entry::Team(t) => &t.spec.account,
        Entry::Role(r) => r.spec.account.as_deref().unwrap_or_default(),
        Entry::RoleBinding(b) => &b.spec.account,
    }
}

/// The findings the evaluation gives `entry` in the view `ctx`: what the controller would write
/// to its status, and what `check` would report.
fn verdict(ctx: &Ctx<'_>, entry: &Entry) -> Vec<Finding> {
    let name = entry.name();
    match entry {
        Entry::Account(_) => account_problems(ctx, owner_of(ctx).as_deref())
            .into_iter()
            .map(Finding::error)
            .collect(),
        Entry::Member(_) => member_problem(ctx)
            .into_iter()
            .map(Finding::error)
            .collect(),
        Entry::Team(_) => team_verdict(ctx, name)
            .map(|v| v.problems.into_iter().map(Finding::error).collect())
            .unwrap_or_default(),
        Entry::Role(_) => role_evaluation(ctx, name)
            .and_then(|e| e.problem)
            .into_iter()
            .map(Finding::error)
            .collect(),
        Entry::RoleBinding(_) => binding_verdict(ctx, name)
            .map(|v| v.findings(redundant::severity(ctx.account())).collect())
            .unwrap_or_default(),
    }
}

/// Whether the account of `ctx` exists and is not being deleted: only then is its owner kept.
fn alive(ctx: &Ctx<'_>) -> bool {
    ctx.account().is_some_and(|a| !a.metadata.deleting)
}

/// R3: no change leaves an account that has an owner without one. Every path is judged the same
/// way, by asking the evaluation who owns the account before and after the change.
fn owner_kept<'a>(before: &Ctx<'a>, after: &Ctx<'a>, entry: &'a Entry) -> Result<(), Violation> {
    let name = entry.name();
    let accounts: Vec<&str> = match entry {
        // The owner binding names a member, never a team: no team change moves ownership.
        Entry::Account(_) | Entry::Team(_) => Vec::new(),
        Entry::Member(m) => vec![m.spec.account.as_str()],
        Entry::RoleBinding(b) => vec![b.spec.account.as_str()],
        // The accounts whose owner binding names this role.
        Entry::Role(_) => before
            .bindings_of_role(name)
            .into_iter()
            .filter_map(|b| before.binding(b))
            .filter(|b| {
                b.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| owner::is_binding_name(n, &b.spec.account))
            })
            .map(|b| b.spec.account.as_str())
            .collect(),
    };
    for account in accounts {
        // Mostly the view's own account: no second pair of views to build and drop.
        let other = (account != before.account_name)
            .then(|| (before.for_account(account), after.for_account(account)));
        let (before, after) = match &other {
            Some((b, a)) => (b, a),
            None => (before, after),
        };
        if !reaches_owner(before, after, entry) {
            continue;
        }
        let Some(owner) = owner_of(before) else {
            continue;
        };
        if !alive(after) {
            continue;
        }
        let now = owner_verdict(after);
        let subject = match entry {
            Entry::Member(_) => owner::Kept::Member(name),
            Entry::Role(_) => owner::Kept::Role(name),
            _ => owner::Kept::Binding(name),
        };
        owner::check_kept(account, &owner, now.as_ref(), subject)?;
    }
    Ok(())
}

/// Whether a change of `entry` can move the owner binding's verdict, which is judged over the
/// owner member's grants alone: the change is the owner binding, the owner's Member, a binding
/// that reaches the owner before or after it, or a role. Skipping the rest spares two member
/// judgements per admission.
fn reaches_owner<'a>(before: &Ctx<'a>, after: &Ctx<'a>, entry: &Entry) -> bool {
    let owner_binding = owner::binding_name(before.account_name);
    let Some(owner) = before
        .binding(&owner_binding)
        .and_then(|b| b.spec.member_name())
    else {
        // No owner binding before the change: nothing to keep.
        return false;
    };
    let name = entry.name();
    match entry {
        Entry::Member(_) => name == owner,
        Entry::RoleBinding(_) => {
            name == owner_binding
                || [before, after].into_iter().any(|ctx| {
                    ctx.binding(name)
                        .is_some_and(|b| reaches_member(ctx, b, owner))
                })
        }
        Entry::Account(_) | Entry::Team(_) | Entry::Role(_) => true,
    }
}

/// R4: the owner binding moves from `from` to `to`.
fn transfer(before: &Ctx<'_>, from: &str, to: &str, binding: &str) -> Result<(), Violation> {
    if from == to || !owner::is_binding_name(binding, before.account_name) {
        return Ok(());
    }
    // Only a transfer of an accepted owner is one; fixing a broken owner binding is not.
    if owner_of(before).as_deref() != Some(from) {
        return Ok(());
    }
    owner::check_transfer(
        before.account_name,
        before.account(),
        from,
        to,
        |successor| {
            // "Already holds": before the change, so the owner binding being moved (whose role
            // may include the successor role) does not count for its new member. What it holds
            // is what every rule means by it: direct and team grants, active now (R18), default
            // roles included (R14).
            effective::holdings(before, to)
                .roles
                .account
                .iter()
                .any(|r| r == successor)
        },
    )
}

/// Members a team change adds: listed after it, not before, and members of the team's account.
fn joining<'a>(team: &'a Team, old: Option<&'a Team>) -> Vec<&'a str> {
    let before: BTreeSet<&str> = old
        .map(|o| o.spec.members.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let after: BTreeSet<&str> = team.spec.members.iter().map(String::as_str).collect();
    after.difference(&before).copied().collect()
}

/// Adding a member to a team is judged like granting it each of the team's roles: every grant of
/// the member that was accepted (or absent) before the change and is refused after it denies the
/// change, with the rule that refuses it. Removing a member never conflicts.
fn joins<'a>(
    before: &Ctx<'a>,
    after: &Ctx<'a>,
    member: &'a str,
    warnings: &mut Vec<Violation>,
) -> Result<(), Violation> {
    if after
        .member(member)
        .is_none_or(|m| m.spec.account != after.account_name)
    {
        return Ok(());
    }
    let was = judge_member(before, member);
    let now = judge_member(after, member);
    for (binding, result) in &now.verdicts {
        let Err(v) = result else { continue };
        let name = binding.metadata.name.as_deref();
        let refused_before = was
            .verdicts
            .iter()
            .any(|(b, r)| b.metadata.name.as_deref() == name && r.is_err());
        if !refused_before {
            ratchet(Finding::error(v.clone()), &[], warnings)?;
        }
    }
    Ok(())
}

/// Whether a binding reaches `member` in either view: it names it, or a team that lists it.
fn reaches<'a>(before: &Ctx<'a>, after: &Ctx<'a>, binding: &RoleBinding, member: &str) -> bool {
    match binding.spec.team_name() {
        Some(team) => [before, after].into_iter().any(|ctx| {
            ctx.team(team)
                .is_some_and(|t| t.spec.members.iter().any(|m| m == member))
        }),
        None => binding.spec.member.as_deref() == Some(member),
    }
}

/// No escalation for one grant at its scope (R13), with the bind right as the exception.
fn may_grant<'a>(
    ctx: &Ctx<'a>,
    me: &str,
    access: &Access,
    binding: &'a RoleBinding,
) -> Result<(), Violation> {
    let role_name = binding.spec.role.as_str();
    let Some(role) = ctx.role(role_name) else {
        return Ok(());
    };
    let project = binding.spec.project.as_deref();
    let holds = access.permissions_at(project);
    let grants: BTreeSet<&str> = ctx.resolve(role_name).permissions.iter().copied().collect();
    let bind = delegated::bind_right(ctx.account(), role_name, role, &holds);
    delegated::check_no_escalation(me, role_name, project, &grants, &holds, &bind)
}

/// R13 for requests on members, teams and bindings from a requester that is a member of the
/// account: what the requester holds is judged before the change, at the scope of the change.
fn delegation<'a>(
    before: &Ctx<'a>,
    after: &Ctx<'a>,
    review: &Review<'_>,
    entry: &'a Entry,
) -> Result<(), Violation> {
    let Some(requester) = review.requester else {
        return Ok(());
    };
    if !matches!(
        entry,
        Entry::Member(_) | Entry::Team(_) | Entry::RoleBinding(_)
    ) {
        return Ok(());
    }
    let account = before.account_name;
    let me = before
        .ns
        .members_with_identity(&requester.username)
        .find(|m| before.member(m).is_some_and(|m| m.spec.account == account));
    let Some(me) = me else { return Ok(()) };
    let access = effective::holdings(before, me);
    let user = requester.username.as_str();
    let project = match entry {
        Entry::RoleBinding(b) => b.spec.project.as_deref(),
        _ => None,
    };
    delegated::check_admin(
        user,
        me,
        account,
        before.account(),
        project,
        &access.permissions_at(project),
    )?;
    match entry {
        Entry::RoleBinding(binding) => {
            for b in [before.binding(entry.name()), Some(binding)]
                .into_iter()
                .flatten()
            {
                if reaches(before, after, b, me) {
                    delegated::check_not_own(user, me, entry.name(), b.spec.team_name())?;
                }
            }
            if review.operation != Operation::Delete {
                may_grant(after, me, &access, binding)?;
            }
        }
        Entry::Team(team) => {
            let name = entry.name();
            let old = before.team(name);
            let new = match review.operation {
                Operation::Delete => None,
                _ => Some(team),
            };
            let lists_me =
                |t: Option<&Team>| t.is_some_and(|t| t.spec.members.iter().any(|m| m == me));
            if lists_me(old) != lists_me(new) || (new.is_none() && lists_me(old)) {
                return Err(delegated::own_membership(user, me, name));
            }
            // Adding members grants them the team's roles: each at its binding's scope.
            if let Some(new) = new
                && !joining(new, old).is_empty()
            {
                for binding in after.bindings_of_team(name) {
                    may_grant(after, me, &access, binding)?;
                }
            }
        }
        _ => {}
    }
    no_gain_beyond(before, after, me, &access, entry)
}

/// The members whose grants a change of `entry` can move: the member itself, the members a
/// binding reaches, the members a team lists, before and after.
fn moved_members<'a>(before: &Ctx<'a>, after: &Ctx<'a>, entry: &'a Entry) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    let name = entry.name();
    for ctx in [before, after] {
        match entry {
            Entry::Member(_) => {
                out.insert(name);
            }
            Entry::Team(_) => {
                out.extend(
                    ctx.team(name)
                        .into_iter()
                        .flat_map(|t| t.spec.members.iter().map(String::as_str)),
                );
            }
            Entry::RoleBinding(_) => {
                if let Some(b) = ctx.binding(name) {
                    match b.spec.team_name() {
                        Some(team) => out.extend(ctx.team_members(team)),
                        None => out.extend(b.spec.member_name()),
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The no-escalation invariant itself (R13), whatever path a change takes (a grant, a team
/// change, a member arriving in a team, a deletion that lets an older-losing grant win): every
/// permission a member gains at a scope is one the requester holds there, or one it may bind
/// there (the bind right, or `<bindPermission>:<role>` for that role's permissions).
fn no_gain_beyond<'a>(
    before: &Ctx<'a>,
    after: &Ctx<'a>,
    me: &str,
    access: &Access,
    entry: &'a Entry,
) -> Result<(), Violation> {
    let bind = before
        .account()
        .and_then(|a| a.spec.bind_permission.as_deref());
    let scopes: Vec<Option<&str>> = std::iter::once(None)
        .chain(after.projects().map(Some))
        .collect();
    for member in moved_members(before, after, entry) {
        let (was, now) = (
            effective::holdings(before, member),
            effective::holdings(after, member),
        );
        for &scope in &scopes {
            let holds = access.permissions_at(scope);
            if bind.is_some_and(|b| holds.contains(b)) {
                continue;
            }
            let mut may: BTreeSet<&str> = holds.clone();
            if let Some(b) = bind {
                let prefix = format!("{b}:");
                for role in holds.iter().filter_map(|p| p.strip_prefix(prefix.as_str())) {
                    let named = after.role(role).filter(|r| !r.spec.owner);
                    if let Some(name) = named.and_then(|r| r.metadata.name.as_deref()) {
                        may.extend(after.resolve(name).permissions.iter().copied());
                    }
                }
            }
            let old = was.permissions_at(scope);
            let gained: Vec<&str> = now
                .permissions_at(scope)
                .into_iter()
                .filter(|p| !old.contains(p) && !may.contains(p))
                .collect();
            if !gained.is_empty() {
                return Err(delegated::escalation(me, member, scope, &gained, bind));
            }
        }
    }
    Ok(())
}

/// Whether `kind` is one the webhook judges.
pub fn judged_kind(kind: Kind) -> bool {
    Kind::ALL.contains(&kind)
}
