//! Evaluation of one account: which bindings are accepted, which are redundant, who owns the
//! account, and what every member may do. Pure and deterministic: the same objects in any order
//! give the same result, and conflicts go to the older binding (creationTimestamp, then name).

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::context::{Change, Ctx};
use super::effective::{self, Access, Held};
use super::index::{AccountKey, Index};
use super::rule::{Finding, Severity, Violation};
use super::rules::window::{Activity, Window};
use super::rules::{
    exclusive, member_type, owner, redundant, reference, same_account, scope, subject, window,
};
use super::slim::{Member, Role, RoleBinding};
use crate::api::{Kind, Subject};

/// The verdict on one binding.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingVerdict {
    /// The member a direct binding names; empty for a team binding.
    pub member: String,
    /// The team a team binding names.
    pub team: Option<String>,
    /// `Err` carries the rule that keeps the binding from granting anything.
    pub accepted: Result<(), Violation>,
    /// For an accepted team binding: the members of the team it grants nothing to, and why
    /// (member-by-member resolution: the older grant wins).
    pub unreached: Vec<(String, Violation)>,
    /// R9: accepted, but grants nothing new to any member it reaches.
    pub redundant: Option<Violation>,
    /// Where the evaluation's instant falls in the binding's window (R18).
    pub activity: Activity,
    /// Why it is inactive (`NotYetActive`, `Expired`), with the time: its `Active=False` message.
    pub inactive: Option<Violation>,
    /// The binding's next window boundary after the evaluation's instant: when to look again.
    pub next_boundary: Option<Timestamp>,
}

impl BindingVerdict {
    /// The binding's findings; `redundant` is the account's R9 policy ([`redundant::severity`]).
    /// A member a team binding does not reach is an error too: the grant is illegal for it.
    pub fn findings(&self, redundant: Severity) -> impl Iterator<Item = Finding> + '_ {
        let rejected = self
            .accepted
            .as_ref()
            .err()
            .map(|v| Finding::error(v.clone()));
        let unreached = self
            .unreached
            .iter()
            .filter(|_| self.accepted.is_ok())
            .map(|(_, v)| Finding::error(v.clone()));
        let redundant = self.redundant.as_ref().map(|v| Finding {
            violation: v.clone(),
            severity: redundant,
        });
        rejected.into_iter().chain(unreached).chain(redundant)
    }
}

/// Where one of a member's roles comes from: what Member status shows per scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantSource {
    pub binding: String,
    pub team: Option<String>,
    pub role: String,
    pub project: Option<String>,
}

/// The verdict on one member of the account.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberVerdict {
    pub problem: Option<Violation>,
    pub access: Access,
    /// The accepted grants it receives, direct and through teams.
    pub sources: Vec<GrantSource>,
    /// The grants that reach it but give it nothing, with the rule.
    pub refused: Vec<(GrantSource, Violation)>,
}

/// The verdict on one team of the account.
#[derive(Clone, Debug, PartialEq)]
pub struct TeamVerdict {
    /// Findings about the team's own list (R16 missing member, R8 foreign member) and account.
    pub problems: Vec<Violation>,
    /// Listed members that resolve to Members of the team's account, sorted.
    pub resolved: Vec<String>,
    /// Bindings that name the team.
    pub bindings: u32,
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
    pub teams: BTreeMap<String, TeamVerdict>,
    /// How the account's policy ranks a redundant binding (R9).
    pub redundant: Severity,
    /// The instant it was evaluated at (R18).
    pub at: Timestamp,
    /// The earliest window boundary of any binding after `at`: until then it stays true.
    pub next_boundary: Option<Timestamp>,
}

impl AccountEvaluation {
    /// Whether it still describes the account at `now`: no window opened or closed since `at`.
    pub fn holds_at(&self, now: Timestamp) -> bool {
        now >= self.at && self.next_boundary.is_none_or(|b| now < b)
    }

    /// Bindings whose window has closed for good: dead configuration, which `check` warns about.
    pub fn expired(&self) -> impl Iterator<Item = (&str, &Violation)> {
        self.bindings.iter().filter_map(|(n, v)| {
            v.inactive
                .as_ref()
                .filter(|i| i.reason == super::rule::Reason::Expired)
                .map(|i| (n.as_str(), i))
        })
    }

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
        for (name, verdict) in &self.teams {
            for problem in &verdict.problems {
                out.push((Kind::Team, name, Finding::error(problem.clone())));
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

/// One member's grants, judged in age order.
pub(crate) struct MemberJudgement<'a> {
    pub verdicts: Vec<(&'a RoleBinding, Result<(), Violation>)>,
    pub held: Vec<Held<'a>>,
    /// Redundant bindings (R9): positions in `held` of each and of the grant that covers it.
    pub redundant: BTreeMap<&'a str, (usize, usize)>,
}

impl MemberJudgement<'_> {
    fn result(&self, binding: &str) -> Option<&Result<(), Violation>> {
        self.verdicts
            .iter()
            .find(|(b, _)| b.metadata.name.as_deref() == Some(binding))
            .map(|(_, r)| r)
    }
}

/// Older first: creationTimestamp, then name. Objects not stored yet (no timestamp), and above
/// all the one a CREATE brings, are newest.
fn age_order(ctx: &Ctx<'_>, a: &RoleBinding, b: &RoleBinding) -> std::cmp::Ordering {
    fn key<'x>(ctx: &Ctx<'_>, x: &'x RoleBinding) -> (bool, bool, Option<i64>, &'x str) {
        let name = x.metadata.name.as_deref().unwrap_or_default();
        let ts = x.metadata.created();
        (ctx.change.creates(x), ts.is_none(), ts, name)
    }
    key(ctx, a).cmp(&key(ctx, b))
}

/// The checks a binding passes or fails whoever it reaches: its subject, account, role, scope
/// and project, and for a team binding the team itself.
fn admissible<'a>(ctx: &Ctx<'a>, binding: &'a RoleBinding) -> Result<&'a Role, Violation> {
    let key = std::ptr::from_ref(binding);
    if let Some(known) = ctx.grants.borrow().get(&key) {
        return known.clone();
    }
    let verdict = grant_checks(ctx, binding);
    ctx.grants.borrow_mut().insert(key, verdict.clone());
    verdict
}

/// [`admissible`], worked out.
fn grant_checks<'a>(ctx: &Ctx<'a>, binding: &'a RoleBinding) -> Result<&'a Role, Violation> {
    let spec = &binding.spec;
    let name = binding.metadata.name.as_deref().unwrap_or_default();
    let account = ctx.account_name;
    let subject = subject::check(name, spec)?;
    let found = ctx
        .account()
        .ok_or_else(|| reference::account_not_found(account))?;
    let role = ctx
        .role(&spec.role)
        .ok_or_else(|| reference::role_not_found(&spec.role))?;
    same_account::check_role(account, &spec.role, role)?;
    owner::check_name(name, account, &spec.role, role)?;
    owner::check_subject(name, account, spec.team_name())?;
    let window = Window::of(spec);
    owner::check_window(name, account, &window)?;
    window::check(name, &window)?;
    scope::check(&spec.role, role, spec.project.as_deref())?;
    let has_project = |p: &str| found.spec.projects.iter().any(|q| q.name == p);
    if let Some(project) = spec.project.as_deref().filter(|p| !has_project(p)) {
        return Err(reference::project_not_found(project, account));
    }
    if let Subject::Team(team_name) = subject {
        let team = ctx
            .team(team_name)
            .ok_or_else(|| reference::team_not_found(team_name))?;
        same_account::check_team(account, team_name, team)?;
    }
    Ok(role)
}

/// The checks of one grant for one member it reaches.
fn admissible_for<'a>(
    ctx: &Ctx<'a>,
    binding: &'a RoleBinding,
    role: &'a Role,
    member_name: &str,
    member: Option<&Member>,
) -> Result<(), Violation> {
    let spec = &binding.spec;
    let member = member.ok_or_else(|| reference::member_not_found(member_name))?;
    same_account::check_member(ctx.account_name, member_name, member)?;
    member_type::check(member_name, member, &spec.role, role)
}

/// Judges every grant of one member: each in age order, against those accepted before it (R5),
/// then the accepted ones against each other (R9). The grants are always all of them, its direct
/// bindings and those of its teams ([`Ctx::grants_of_member`], the contract's "Grants"): no rule
/// can judge a member by part of what it holds.
pub(crate) fn judge_member<'a>(ctx: &Ctx<'a>, member: &str) -> MemberJudgement<'a> {
    let mut grants = ctx.grants_of_member(member);
    grants.sort_by(|a, b| age_order(ctx, a, b));
    grants.dedup_by(|a, b| a.metadata.name == b.metadata.name);
    let mut held: Vec<Held<'a>> = Vec::with_capacity(grants.len());
    let mut verdicts = Vec::with_capacity(grants.len());
    // Looked up once: every grant is judged for this same member.
    let found = ctx.member(member);
    for binding in grants {
        let project = binding.spec.project.as_deref();
        let window = Window::of(&binding.spec);
        let verdict = admissible(ctx, binding).and_then(|role| {
            admissible_for(ctx, binding, role, member, found)?;
            exclusive::check(
                member,
                ctx.account_name,
                &binding.spec.role,
                role,
                project,
                &window,
                &held,
            )?;
            held.push(Held {
                binding: binding.metadata.name.as_deref().unwrap_or_default(),
                team: binding.spec.team_name(),
                role_name: &binding.spec.role,
                role,
                project,
                grants: ctx.resolve(&binding.spec.role),
                window,
            });
            Ok(())
        });
        verdicts.push((binding, verdict));
    }
    let redundant = redundant::find(&held);
    MemberJudgement {
        verdicts,
        held,
        redundant,
    }
}

/// The members whose judgement decides a binding's verdict: the one it names, or the members
/// its team reaches.
pub(crate) fn reached<'a>(ctx: &Ctx<'a>, binding: &'a RoleBinding) -> Vec<&'a str> {
    match binding.spec.subject() {
        Some(Subject::Member(m)) => vec![m],
        Some(Subject::Team(t)) => ctx.team_members(t),
        None => Vec::new(),
    }
}

/// Whether `member` is among [`reached`]'s members, without collecting them.
pub(crate) fn reaches_member(ctx: &Ctx<'_>, binding: &RoleBinding, member: &str) -> bool {
    match binding.spec.subject() {
        Some(Subject::Member(m)) => m == member,
        Some(Subject::Team(t)) => ctx.team_reaches(t, member),
        None => false,
    }
}

/// A binding's verdict from the judgements of the members it reaches (member by member: a team
/// binding that loses for some members stays accepted for the others and names them).
fn compose<'a>(
    ctx: &Ctx<'a>,
    binding: &'a RoleBinding,
    members: &[&'a str],
    judged: &BTreeMap<&'a str, MemberJudgement<'a>>,
) -> BindingVerdict {
    let name = binding.metadata.name.as_deref().unwrap_or_default();
    let window = Window::of(&binding.spec);
    let activity = window.activity(ctx.now);
    let subject = match binding.spec.subject() {
        Some(Subject::Team(t)) => format!("team {t}"),
        Some(Subject::Member(m)) => m.to_owned(),
        None => name.to_owned(),
    };
    let mut verdict = BindingVerdict {
        member: binding.spec.member_name().unwrap_or_default().to_owned(),
        team: binding.spec.team_name().map(str::to_owned),
        accepted: Ok(()),
        unreached: Vec::new(),
        redundant: None,
        activity,
        inactive: window::inactive(
            &subject,
            &binding.spec.role,
            binding.spec.project.as_deref(),
            activity,
        ),
        next_boundary: window.next_boundary(ctx.now),
    };
    if let Err(v) = admissible(ctx, binding) {
        verdict.accepted = Err(v);
        return verdict;
    }
    let mut redundant: Vec<(&str, &MemberJudgement<'a>, (usize, usize))> = Vec::new();
    let mut reached_any = false;
    for member in members {
        let Some(judgement) = judged.get(member) else {
            continue;
        };
        match judgement.result(name) {
            Some(Ok(())) => {
                reached_any = true;
                redundant.extend(
                    judgement
                        .redundant
                        .get(name)
                        .map(|&r| (*member, judgement, r)),
                );
            }
            Some(Err(v)) => verdict.unreached.push(((*member).to_owned(), v.clone())),
            None => {}
        }
    }
    if !reached_any && let Some((_, v)) = verdict.unreached.first() {
        verdict.accepted = Err(v.clone());
    }
    if binding.spec.member_name().is_some() {
        verdict.unreached.clear();
    }
    if reached_any && redundant.len() == members.len() - verdict.unreached.len() {
        verdict.redundant = redundant.first().and_then(|&(member, j, (h, g))| {
            let (h, g) = (j.held.get(h)?, j.held.get(g)?);
            Some(redundant::redundant(member, h, g))
        });
    }
    verdict
}

/// Judges the members a binding reaches, each with all of its grants in the account: the
/// verdict of one binding is never read in isolation, so admission and evaluation agree.
pub(crate) fn binding_verdict(ctx: &Ctx<'_>, name: &str) -> Option<BindingVerdict> {
    let binding = ctx
        .binding(name)
        .filter(|b| b.spec.account == ctx.account_name)?;
    let members = reached(ctx, binding);
    let judged = members.iter().map(|&m| (m, judge_member(ctx, m))).collect();
    Some(compose(ctx, binding, &members, &judged))
}

/// Problems of a team's own list and account: reported on the Team.
pub(crate) fn team_verdict(ctx: &Ctx<'_>, name: &str) -> Option<TeamVerdict> {
    let team = ctx.team(name)?;
    let mut problems = Vec::new();
    if ctx.account_named(&team.spec.account).is_none() {
        problems.push(reference::account_not_found(&team.spec.account));
    }
    let mut resolved = Vec::new();
    let listed: std::collections::BTreeSet<&str> =
        team.spec.members.iter().map(String::as_str).collect();
    for m in listed {
        match ctx.member(m) {
            None => problems.push(reference::team_member_not_found(name, m)),
            Some(member) => match same_account::check_team_member(name, team, m, member) {
                Ok(()) => resolved.push(m.to_owned()),
                Err(v) => problems.push(v),
            },
        }
    }
    Some(TeamVerdict {
        problems,
        resolved,
        bindings: u32::try_from(ctx.bindings_naming_team(name).len()).unwrap_or(u32::MAX),
    })
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

/// Evaluates one account as the index holds it, at the instant `now` (R18: the caller's clock).
pub fn evaluate_account(index: &Index, key: &AccountKey, now: Timestamp) -> AccountEvaluation {
    evaluate_in(&Ctx::stored(index, key, now))
}

pub(crate) fn evaluate_in(ctx: &Ctx<'_>) -> AccountEvaluation {
    let mut eval = AccountEvaluation {
        key: AccountKey::new(ctx.namespace, ctx.account_name),
        exists: ctx.account().is_some(),
        owner: owner_of(ctx),
        problems: Vec::new(),
        bindings: BTreeMap::new(),
        members: BTreeMap::new(),
        teams: BTreeMap::new(),
        redundant: redundant::severity(ctx.account()),
        at: ctx.now,
        next_boundary: None,
    };
    eval.problems = account_problems(ctx, eval.owner.as_deref());
    let members = ctx.members();
    let mut judged: BTreeMap<&str, MemberJudgement<'_>> = BTreeMap::new();
    for member in members.iter().copied().chain(ctx.bound_members()) {
        if !judged.contains_key(member) {
            judged.insert(member, judge_member(ctx, member));
        }
    }
    for binding in ctx.bindings() {
        let name = binding
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .to_owned();
        let verdict = compose(ctx, binding, &reached(ctx, binding), &judged);
        eval.next_boundary = match (eval.next_boundary, verdict.next_boundary) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        eval.bindings.insert(name, verdict);
    }
    for team in ctx.teams() {
        if let Some(verdict) = team_verdict(ctx, team) {
            eval.teams.insert(team.to_owned(), verdict);
        }
    }
    let problem = member_problem(ctx);
    for name in members {
        let member = ctx.member(name);
        let judgement = judged.get(name);
        let held = judgement.map_or(&[][..], |j| j.held.as_slice());
        let source = |b: &RoleBinding| GrantSource {
            binding: b.metadata.name.as_deref().unwrap_or_default().to_owned(),
            team: b.spec.team.as_ref().map(ToString::to_string),
            role: b.spec.role.to_string(),
            project: b.spec.project.as_ref().map(ToString::to_string),
        };
        let (mut sources, mut refused) = (Vec::new(), Vec::new());
        for (b, result) in judgement.iter().flat_map(|j| &j.verdicts) {
            match result {
                // An accepted grant outside its window gives nothing now (R18).
                Ok(()) if !Window::of(&b.spec).contains(ctx.now) => {}
                Ok(()) => sources.push(source(b)),
                Err(v) => refused.push((source(b), v.clone())),
            }
        }
        eval.members.insert(
            name.to_owned(),
            MemberVerdict {
                problem: problem.clone(),
                access: effective::access(ctx, member, held),
                sources,
                refused,
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
    // What a role grants does not depend on time: no window is read.
    let ctx = Ctx::new(
        namespace,
        Some(ns),
        account,
        Change::None,
        Timestamp::UNIX_EPOCH,
    );
    role_evaluation(&ctx, name)
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
