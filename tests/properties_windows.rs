//! Property tests for time-bound grants (R18) over random accounts: direct and team bindings
//! with random windows, ages and exclusive roles, judged at every boundary and between them.
//!
//! - At every instant t a member's effective permissions are the union of what its accepted
//!   grants whose windows contain t give (the default role when there is none, R14).
//! - No member ever holds two accepted exclusive grants on one scope whose windows overlap (R5).
//! - Which grants are accepted does not depend on t: overlap compares the windows themselves.

mod support;

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;
use rolegate::api::*;
use rolegate::engine::rules::window::Window;
use rolegate::engine::{self, Index, Timestamp};
use support::*;

const HOUR: i64 = 3600;
const MEMBERS: [&str; 3] = ["bob", "carol", "dave"];
/// name, scope, permission, exclusive group
const ROLES: [(&str, RoleScope, &str, Option<&str>); 4] = [
    ("viewer", RoleScope::Project, "project.view", Some("access")),
    (
        "admin",
        RoleScope::Project,
        "project.manage",
        Some("access"),
    ),
    ("web", RoleScope::Project, "web.manage", None),
    (
        "billing",
        RoleScope::Account,
        "billing.view",
        Some("access"),
    ),
];

#[derive(Clone, Debug)]
struct Grant {
    /// A member index, or `None` for the team.
    member: Option<usize>,
    role: usize,
    from: Option<i64>,
    until: Option<i64>,
    age: i64,
}

fn grant() -> impl Strategy<Value = Grant> {
    (
        prop::option::of(0..MEMBERS.len()),
        0..ROLES.len(),
        prop::option::of(0i64..8),
        prop::option::of(1i64..9),
        0i64..4,
    )
        .prop_map(|(member, role, from, until, age)| {
            // Keep windows non-empty: an empty one is an R18 error, tested elsewhere.
            let until = match (from, until) {
                (Some(f), Some(u)) if u <= f => Some(f + 1),
                (_, u) => u,
            };
            Grant {
                member,
                role,
                from,
                until,
                age,
            }
        })
}

fn at(hours: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + hours * HOUR).expect("in range")
}

fn world(grants: &[Grant], team: &[bool]) -> Index {
    let mut index = owned_account();
    index.apply(mk_member("carol", "acme", MemberType::User).into());
    index.apply(mk_member("dave", "acme", MemberType::User).into());
    for (name, scope, permission, group) in ROLES {
        let mut role = mk_role(name, scope, &[permission]);
        role.spec.exclusive_groups = group.map(|g| vec![g.to_owned()]).unwrap_or_default();
        index.apply(role.into());
    }
    let mut basic = mk_role("basic", RoleScope::Account, &["account.view"]);
    basic.spec.default = true;
    index.apply(basic.into());
    let crew: Vec<&str> = MEMBERS
        .iter()
        .zip(team)
        .filter(|(_, on)| **on)
        .map(|(m, _)| *m)
        .collect();
    index.apply(mk_team("crew", "acme", &crew).into());
    for (i, g) in grants.iter().enumerate() {
        let (role, scope, _, _) = ROLES[g.role];
        let project = (scope == RoleScope::Project).then_some("shop");
        let name = format!("g{i}");
        let mut b = match g.member {
            Some(m) => mk_binding(&name, "acme", MEMBERS[m], role, project),
            None => mk_team_binding(&name, "acme", "crew", role, project),
        };
        b.spec.valid_from = g.from.map(|h| Time(at(h)));
        b.spec.valid_until = g.until.map(|h| Time(at(h)));
        index.apply(created_at(b, g.age).into());
    }
    index
}

/// The grants that reach `member`: direct ones and the team's.
fn reaching<'a>(
    grants: &'a [Grant],
    team: &'a [bool],
    member: usize,
) -> impl Iterator<Item = (usize, &'a Grant)> + 'a {
    grants
        .iter()
        .enumerate()
        .filter(move |(_, g)| g.member.map_or(team[member], |m| m == member))
}

fn window(g: &Grant) -> Window {
    Window {
        from: g.from.map(at),
        until: g.until.map(at),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn effective_access_is_the_union_of_grants_active_at_each_instant(
        grants in prop::collection::vec(grant(), 0..7),
        team in prop::collection::vec(any::<bool>(), MEMBERS.len()),
    ) {
        let index = world(&grants, &team);
        let mut accepted_at_first: Option<BTreeSet<(String, String)>> = None;
        // Every boundary and every half hour between: -1 .. 10 hours.
        for half in -2i64..20 {
            let now = Timestamp::from_second(1_800_000_000 + half * HOUR / 2).expect("in range");
            let eval = engine::evaluate_account(&index, &acme(), now);
            let mut accepted_now = BTreeSet::new();
            for (m, member) in MEMBERS.iter().enumerate() {
                let verdict = &eval.members[*member];
                let accepted: Vec<(usize, &Grant)> = reaching(&grants, &team, m)
                    .filter(|(i, _)| verdict.refused.iter().all(|(s, _)| s.binding != format!("g{i}")))
                    .collect();
                for (i, _) in &accepted {
                    accepted_now.insert(((*member).to_owned(), format!("g{i}")));
                }
                // No two accepted exclusive grants with overlapping windows (R5); every role in
                // a group here is exclusive with the others, and account grants count on shop.
                for (a, ga) in &accepted {
                    for (b, gb) in &accepted {
                        let exclusive = ROLES[ga.role].3.is_some() && ROLES[gb.role].3.is_some();
                        if a < b && exclusive && ga.role != gb.role {
                            prop_assert!(
                                !window(ga).overlaps(&window(gb)),
                                "{member} holds g{a} and g{b} in overlapping windows"
                            );
                        }
                    }
                }
                let active: Vec<&Grant> = accepted
                    .iter()
                    .map(|(_, g)| *g)
                    .filter(|g| window(g).contains(now))
                    .collect();
                let mut expected: BTreeSet<&str> = active.iter().map(|g| ROLES[g.role].2).collect();
                if active.is_empty() {
                    expected.insert("account.view");
                }
                let actual: BTreeSet<&str> = verdict
                    .access
                    .permissions_at(Some("shop"))
                    .into_iter()
                    .collect();
                prop_assert_eq!(&actual, &expected, "{} at {}", member, now);
                prop_assert_eq!(verdict.access.defaulted, active.is_empty());
            }
            match &accepted_at_first {
                None => accepted_at_first = Some(accepted_now),
                Some(first) => prop_assert_eq!(first, &accepted_now, "acceptance moved with time"),
            }
        }
    }
}
