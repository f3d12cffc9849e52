//! Property tests with teams: for any mix of direct and team bindings the engine's invariants
//! hold, and a delegated requester never escalates, whatever sequence of changes it tries.
//!
//! A generated [`World`] is a plain description turned into objects with the `support` builders.
//! Expectations are computed from that description by the small functions below (role
//! permissions without includes, so a role's grant is its own list), never by the engine.

#[path = "support/agreement.rs"]
mod agreement;
#[path = "support/decision_agreement.rs"]
mod decision_agreement;
mod support;

use std::collections::BTreeSet;

use proptest::collection::vec;
use proptest::prelude::*;
use rolegate::api::*;
use rolegate::engine::{self, Decision, Index, Operation, Requester, Review};
use support::*;

const PROJECTS: [&str; 2] = ["p0", "p1"];
const PERMISSIONS: [&str; 5] = ["a", "b", "c", "members.manage", "roles.bind"];
const MEMBERS: [&str; 4] = ["m0", "m1", "m2", "m3"];
const TEAMS: [&str; 2] = ["t0", "t1"];

#[derive(Clone, Debug)]
struct RoleDef {
    project: bool,
    group: bool,
    permissions: BTreeSet<&'static str>,
    users_only: bool,
}

#[derive(Clone, Debug)]
struct BindingDef {
    team: bool,
    subject: usize,
    role: usize,
    project: usize,
}

#[derive(Clone, Debug)]
struct World {
    roles: Vec<RoleDef>,
    services: Vec<bool>,
    teams: Vec<BTreeSet<usize>>,
    bindings: Vec<BindingDef>,
    bind_permission: bool,
}

fn role_def() -> impl Strategy<Value = RoleDef> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::sample::subsequence(PERMISSIONS.to_vec(), 0..=3),
        any::<bool>(),
    )
        .prop_map(|(project, group, permissions, users_only)| RoleDef {
            project,
            group,
            permissions: permissions.into_iter().collect(),
            users_only,
        })
}

fn world() -> impl Strategy<Value = World> {
    (
        vec(role_def(), 2..=4),
        vec(any::<bool>(), 4),
        vec(proptest::collection::btree_set(0..4usize, 0..=3), 2),
        vec(
            (any::<bool>(), 0..4usize, 0..4usize, 0..2usize).prop_map(
                |(team, subject, role, project)| BindingDef {
                    team,
                    subject,
                    role,
                    project,
                },
            ),
            0..=8,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(roles, services, teams, bindings, bind_permission)| World {
                roles,
                services,
                teams,
                bindings,
                bind_permission,
            },
        )
}

fn role_name(i: usize) -> String {
    format!("r{i}")
}

impl World {
    fn role(&self, i: usize) -> &RoleDef {
        &self.roles[i % self.roles.len()]
    }

    fn objects(&self) -> Vec<Object> {
        let mut out: Vec<Object> = Vec::new();
        let mut account = mk_account("acme", &PROJECTS);
        account.spec.member_admin_permission = Some("members.manage".into());
        if self.bind_permission {
            account.spec.bind_permission = Some("roles.bind".into());
        }
        out.push(account.into());
        out.push(mk_owner_role("owner").into());
        out.push(mk_member("alice", "acme", MemberType::User).into());
        out.push(mk_binding("acme-owner", "acme", "alice", "owner", None).into());
        for (i, r) in self.roles.iter().enumerate() {
            let scope = if r.project {
                RoleScope::Project
            } else {
                RoleScope::Account
            };
            let perms: Vec<&str> = r.permissions.iter().copied().collect();
            let mut role = mk_role(&role_name(i), scope, &perms);
            if r.group {
                role.spec.exclusive_groups = vec!["g".into()];
            }
            if r.users_only {
                role.spec.member_types = vec![MemberType::User];
            }
            out.push(role.into());
        }
        for (i, m) in MEMBERS.iter().enumerate() {
            let kind = if self.services[i] {
                MemberType::Service
            } else {
                MemberType::User
            };
            let mut member = mk_member(m, "acme", kind);
            member.spec.identity = Some(format!("{m}@x"));
            out.push(member.into());
        }
        for (i, t) in TEAMS.iter().enumerate() {
            let members: Vec<&str> = self.teams[i].iter().map(|m| MEMBERS[*m]).collect();
            out.push(mk_team(t, "acme", &members).into());
        }
        for (i, b) in self.bindings.iter().enumerate() {
            let role = self.role(b.role);
            let project = role.project.then_some(PROJECTS[b.project]);
            let name = format!("b{i}");
            let role_name = role_name(b.role % self.roles.len());
            let binding = if b.team {
                mk_team_binding(&name, "acme", TEAMS[b.subject % 2], &role_name, project)
            } else {
                mk_binding(&name, "acme", MEMBERS[b.subject], &role_name, project)
            };
            out.push(created_at(binding, 10 + i as i64).into());
        }
        out
    }

    fn index(&self) -> Index {
        let mut index = Index::new();
        for o in self.objects() {
            index.apply(o);
        }
        index
    }
}

fn permissions_of(
    eval: &engine::AccountEvaluation,
    member: &str,
    project: Option<&str>,
) -> BTreeSet<String> {
    eval.members
        .get(member)
        .map(|m| {
            m.access
                .permissions_at(project)
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The same objects in any order give the same evaluation.
    #[test]
    fn order_independence_with_teams(world in world(), seed in any::<u64>()) {
        let expected = engine::evaluate_account(&world.index(), &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
        let mut objects = world.objects();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..objects.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            objects.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut index = Index::new();
        for o in objects {
            index.apply(o);
        }
        prop_assert_eq!(engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH), expected);
    }

    /// No member receives two accepted roles of one exclusive group on overlapping scopes.
    #[test]
    fn exclusivity_whatever_mix_of_direct_and_team_bindings(world in world()) {
        let eval = engine::evaluate_account(&world.index(), &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
        for (member, verdict) in &eval.members {
            let grouped: Vec<_> = verdict
                .sources
                .iter()
                .filter(|s| s.role.starts_with('r') && world.role(s.role[1..].parse().unwrap_or(0)).group)
                .collect();
            for (i, a) in grouped.iter().enumerate() {
                for b in &grouped[i + 1..] {
                    let overlap = a.project.is_none() || b.project.is_none() || a.project == b.project;
                    prop_assert!(
                        a.role == b.role || !overlap,
                        "{member} holds {} ({:?}) and {} ({:?})", a.role, a.project, b.role, b.project
                    );
                }
            }
        }
    }

    /// Effective permissions are exactly the union over the member's accepted grants.
    #[test]
    fn permissions_are_the_union_of_accepted_grants(world in world()) {
        let eval = engine::evaluate_account(&world.index(), &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
        for member in MEMBERS {
            let verdict = &eval.members[member];
            for project in [None, Some("p0"), Some("p1")] {
                let mut expected: BTreeSet<String> = BTreeSet::new();
                for s in &verdict.sources {
                    let def = world.role(s.role[1..].parse().unwrap_or(0));
                    if s.project.is_none() || s.project.as_deref() == project {
                        expected.extend(def.permissions.iter().map(|p| (*p).to_owned()));
                    }
                }
                prop_assert_eq!(permissions_of(&eval, member, project), expected, "{} on {:?}", member, project);
            }
            // Every binding that reaches the member appears once: as a source or as refused.
            let direct = world.bindings.iter().filter(|b| !b.team && MEMBERS[b.subject] == member).count();
            let through = world.bindings.iter().filter(|b| b.team && world.teams[b.subject % 2].contains(&MEMBERS.iter().position(|m| *m == member).unwrap_or(9))).count();
            prop_assert_eq!(verdict.sources.len() + verdict.refused.len(), direct + through);
        }
    }

    /// Admission agrees with evaluation for Team changes: an allowed change leaves no grant of
    /// an added member newly refused and no error on the team; a denial names such a finding.
    /// A requester only ever adds restrictions.
    #[test]
    fn admission_agrees_with_evaluation_for_team_changes(
        world in world(),
        team in 0..2usize,
        members in proptest::collection::btree_set(0..4usize, 0..=4),
        op in 0..3usize,
        who in 0..4usize,
    ) {
        let name = TEAMS[team];
        let old = mk_team(name, "acme", &world.teams[team].iter().map(|m| MEMBERS[*m]).collect::<Vec<_>>());
        let new = mk_team(name, "acme", &members.iter().map(|m| MEMBERS[*m]).collect::<Vec<_>>());
        let (operation, old_obj, new_obj): (Operation, Option<Object>, Option<Object>) = match op {
            0 => (Operation::Update, Some(old.clone().into()), Some(new.clone().into())),
            1 => (Operation::Delete, Some(old.clone().into()), None),
            _ => (Operation::Create, None, Some(new.clone().into())),
        };
        let mut base = world.index();
        if operation == Operation::Create {
            base.delete(Kind::Team, NS, name);
        }
        let review = |requester: Option<&Requester>| engine::admit(&base, &Review {
            operation,
            object: new_obj.as_ref(),
            old_object: old_obj.as_ref(),
            requester,
        }, rolegate::engine::Timestamp::UNIX_EPOCH);
        let decision = review(None);
        let before = engine::evaluate_account(&base, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
        let mut after_index = world.index();
        if operation == Operation::Create { after_index.delete(Kind::Team, NS, name); }
        match &new_obj { Some(o) => { after_index.apply(o.clone()); } None => { after_index.delete(Kind::Team, NS, name); } }
        let after = engine::evaluate_account(&after_index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
        let was: BTreeSet<usize> = if operation == Operation::Create { BTreeSet::new() } else { world.teams[team].clone() };
        let added: Vec<&str> = if new_obj.is_some() { members.difference(&was).map(|m| MEMBERS[*m]).collect() } else { Vec::new() };
        let newly_refused: Vec<_> = added.iter().flat_map(|m| {
            let old_refused: BTreeSet<String> = before.members[*m].refused.iter().map(|(s, _)| s.binding.clone()).collect();
            after.members[*m].refused.iter().filter(move |(s, _)| !old_refused.contains(&s.binding)).map(|(_, v)| v.reason).collect::<Vec<_>>()
        }).collect();
        let team_errors: Vec<_> = after.teams.get(name).map(|t| t.problems.iter().filter(|v| !v.may_heal()).map(|v| v.reason).collect()).unwrap_or_default();
        match &decision {
            Decision::Allow { .. } => {
                prop_assert!(newly_refused.iter().all(|r| r.rule().id() == "R16"), "allowed, yet refused {:?}", newly_refused);
                prop_assert!(team_errors.is_empty(), "allowed, yet {:?}", team_errors);
            }
            Decision::Deny(v) => {
                prop_assert!(newly_refused.contains(&v.reason) || team_errors.contains(&v.reason), "denied {v} without a finding");
            }
        }
        let requester = Requester { username: format!("{}@x", MEMBERS[who]), groups: vec![] };
        if !decision.is_allowed() {
            prop_assert!(!review(Some(&requester)).is_allowed());
        }
    }

    /// The no-escalation invariant: whatever sequence of changes a delegated requester tries,
    /// every change it is allowed gives no member a permission, at any scope, that the requester
    /// does not hold there, unless it holds the bind right there.
    #[test]
    fn a_delegated_requester_never_escalates(
        world in world(),
        who in 0..4usize,
        steps in vec((0..4usize, 0..4usize, 0..4usize, 0..2usize, any::<bool>()), 1..6),
    ) {
        let mut index = world.index();
        let me = MEMBERS[who];
        let requester = Requester { username: format!("{me}@x"), groups: vec![] };
        for (n, (kind, subject, role, project, team)) in steps.into_iter().enumerate() {
            let before = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
            let change: (Operation, Option<Object>, Option<Object>) = match kind {
                0 | 1 => {
                    let def = world.role(role);
                    let project = def.project.then_some(PROJECTS[project]);
                    let role = role_name(role % world.roles.len());
                    let name = format!("s{n}");
                    let b = if team {
                        mk_team_binding(&name, "acme", TEAMS[subject % 2], &role, project)
                    } else {
                        mk_binding(&name, "acme", MEMBERS[subject], &role, project)
                    };
                    (Operation::Create, None, Some(b.into()))
                }
                2 => {
                    let t = TEAMS[subject % 2];
                    let Some(old) = index.namespace(NS).and_then(|ns| ns.team(t)).map(|t| t.spec.members.clone()) else { continue };
                    let mut members = old.clone();
                    if !members.iter().any(|m| m == MEMBERS[role]) { members.push(MEMBERS[role].to_owned()); }
                    let old_team = mk_team(t, "acme", &old.iter().map(String::as_str).collect::<Vec<_>>());
                    let new_team = mk_team(t, "acme", &members.iter().map(String::as_str).collect::<Vec<_>>());
                    (Operation::Update, Some(old_team.into()), Some(new_team.into()))
                }
                _ => {
                    let names = index.names(Kind::RoleBinding);
                    let Some((_, name)) = names.get(subject % names.len().max(1)).cloned() else { continue };
                    if name == "acme-owner" { continue; }
                    (Operation::Delete, Some(stored_binding(&index, &name).into()), None)
                }
            };
            let (operation, old, new) = change;
            let decision = engine::admit(&index, &Review {
                operation,
                object: new.as_ref(),
                old_object: old.as_ref(),
                requester: Some(&requester),
            }, rolegate::engine::Timestamp::UNIX_EPOCH);
            if !decision.is_allowed() {
                continue;
            }
            match (&new, &old) {
                (Some(o), _) => { index.apply(o.clone()); }
                (None, Some(o)) => { index.delete(o.kind(), NS, &o.name()); }
                _ => {}
            }
            let after = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
            for scope in [None, Some("p0"), Some("p1")] {
                let holds = permissions_of(&before, me, scope);
                if world.bind_permission && holds.contains("roles.bind") {
                    continue;
                }
                for member in MEMBERS.iter().chain(["alice"].iter()) {
                    let was = permissions_of(&before, member, scope);
                    for p in permissions_of(&after, member, scope) {
                        prop_assert!(
                            was.contains(&p) || holds.contains(&p),
                            "{me} gave {member} {p} on {scope:?} by {operation:?} {:?}", new.as_ref().or(old.as_ref()).map(Object::name)
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_generators_produce_team_grants() {
    // Not a property: a guard that the world above reaches the team paths at all.
    let world = World {
        roles: vec![RoleDef {
            project: false,
            group: false,
            permissions: ["a"].into(),
            users_only: false,
        }],
        services: vec![false; 4],
        teams: vec![[0usize, 1].into(), BTreeSet::new()],
        bindings: vec![BindingDef {
            team: true,
            subject: 0,
            role: 0,
            project: 0,
        }],
        bind_permission: false,
    };
    let eval = engine::evaluate_account(
        &world.index(),
        &acme(),
        rolegate::engine::Timestamp::UNIX_EPOCH,
    );
    assert_eq!(eval.members["m1"].sources[0].team.as_deref(), Some("t0"));
}

proptest! {
    /// `who-can` and `explain` agree with the evaluation (issue 11), through teams.
    #[test]
    fn explain_and_who_can_agree_with_evaluation_through_teams(world in world()) {
        let index = world.index();
        let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
        let projects: Vec<String> = PROJECTS.iter().map(|p| (*p).to_owned()).collect();
        agreement::explain_agrees(&index, &eval, &projects, &PERMISSIONS)?;
    }

    /// The decision API agrees with Member status, `explain` and `who-can`, through teams and
    /// identities (issue 26).
    #[test]
    fn decision_api_agrees_through_teams(world in world()) {
        let index = world.index();
        let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
        let projects: Vec<String> = PROJECTS.iter().map(|p| (*p).to_owned()).collect();
        let shared = rolegate::state::Shared::new();
        shared.load(world.index());
        decision_agreement::decision_agrees(&shared, &index, &eval, &projects, &PERMISSIONS)?;
    }
}
