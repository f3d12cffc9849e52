//! Property tests over generated accounts: the engine's invariants hold for any catalog, any
//! bindings (valid or not) and any input order.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rolegate::api::*;
use rolegate::engine::{
    self, AccountEvaluation, AccountKey, Decision, Index, Operation, Review, RuleId,
};
use support::*;

const PERMISSIONS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const ACCOUNTS: [&str; 2] = ["acme", "globex"];
const PROJECTS: [&str; 3] = ["p0", "p1", "p2"];
const TYPES: [MemberType; 3] = [
    MemberType::User,
    MemberType::Service,
    MemberType::Subscriber,
];

#[derive(Clone, Debug)]
struct World {
    objects: Vec<Object>,
}

fn role_strategy(i: usize) -> impl Strategy<Value = Role> {
    (
        any::<bool>(),
        prop::collection::btree_set(0..PERMISSIONS.len(), 0..4),
        prop::collection::btree_set(0..8usize, 0..3),
        prop_oneof![2 => Just(BTreeSet::from([0usize])), 1 => prop::collection::btree_set(0..2usize, 0..2)],
        0..10u8,
        prop_oneof![3 => Just(BTreeSet::from([0usize, 1])), 1 => prop::collection::btree_set(0..3usize, 1..4)],
        0..6u8,
    )
        .prop_map(move |(project, perms, includes, groups, special, types, private)| {
            let scope = if project { RoleScope::Project } else { RoleScope::Account };
            let perms: Vec<&str> = perms.into_iter().map(|p| PERMISSIONS[p]).collect();
            let mut role = mk_role(&format!("r{i}"), scope, &perms);
            // Includes may name missing roles (r8+ never exist) and form cycles.
            role.spec.includes = includes.into_iter().filter(|j| *j != i).map(|j| format!("r{j}")).collect();
            role.spec.exclusive_groups = groups.into_iter().map(|g| format!("g{g}")).collect();
            role.spec.member_types = types.into_iter().map(|t| TYPES[t]).collect();
            match special {
                0 => {
                    role.spec.owner = true;
                    role.spec.scope = RoleScope::Account;
                }
                1 => {
                    role.spec.default = true;
                    role.spec.scope = RoleScope::Account;
                }
                _ => {}
            }
            if private == 0 {
                role.spec.account = Some(ACCOUNTS[i % 2].to_owned());
            }
            role
        })
}

fn world() -> impl Strategy<Value = World> {
    let roles = (0..6usize).map(role_strategy).collect::<Vec<_>>();
    let accounts = prop::collection::vec(
        prop::collection::btree_set(0..PROJECTS.len(), 1..3),
        ACCOUNTS.len(),
    );
    let members = prop::collection::vec(
        (
            0..ACCOUNTS.len(),
            prop_oneof![4 => Just(0usize), 1 => 0..TYPES.len()],
        ),
        1..5,
    );
    // Mostly valid bindings, so that conflicts between accepted ones are common; some are broken on
    // purpose (a missing member, role or project, another account, the owner name).
    let bindings = prop::collection::vec(
        (
            prop_oneof![7 => Just(None), 1 => (0..ACCOUNTS.len()).prop_map(Some)],
            0..6usize,
            0..7usize,
            prop::option::of(prop_oneof![6 => 0..2usize, 1 => 0..4usize]),
            prop::option::of(0..4i64),
            0..6u8,
        ),
        0..20,
    );
    (roles, accounts, members, bindings).prop_map(|(roles, accounts, members, bindings)| {
        let mut objects: Vec<Object> = roles.into_iter().map(Object::from).collect();
        for (name, projects) in ACCOUNTS.iter().zip(accounts) {
            let projects: Vec<&str> = projects.into_iter().map(|p| PROJECTS[p]).collect();
            objects.push(mk_account(name, &projects).into());
        }
        let member_count = members.len();
        for (i, (account, t)) in members.into_iter().enumerate() {
            objects.push(mk_member(&format!("m{i}"), ACCOUNTS[account], TYPES[t]).into());
        }
        let member_accounts: Vec<usize> = objects
            .iter()
            .filter_map(|o| {
                if let Object::Member(m) = o {
                    ACCOUNTS.iter().position(|a| *a == m.spec.account)
                } else {
                    None
                }
            })
            .collect();
        for (i, (account, member, role, project, age, naming)) in bindings.into_iter().enumerate() {
            let member = member.min(member_count);
            let account = ACCOUNTS[account
                .or_else(|| member_accounts.get(member).copied())
                .unwrap_or(0)];
            // Member index past the generated ones names a missing member.
            let member = format!("m{member}");
            let role = format!("r{role}");
            let name = if naming == 0 {
                format!("{account}-owner")
            } else {
                format!("b{i}")
            };
            let project = project.map(|p| PROJECTS.get(p).copied().unwrap_or("nowhere"));
            let mut binding = mk_binding(&name, account, &member, &role, project);
            if let Some(age) = age {
                binding = created_at(binding, age);
            }
            // Two generated bindings may share the owner name: the later one replaces the earlier,
            // as the API server's name uniqueness would.
            objects.retain(|o| !(o.kind() == Kind::RoleBinding && o.name() == name));
            objects.push(binding.into());
        }
        World { objects }
    })
}

fn index_of(objects: &[Object]) -> Index {
    let mut index = Index::new();
    for o in objects {
        index.apply(o.clone());
    }
    index
}

fn evaluations(index: &Index) -> BTreeMap<AccountKey, AccountEvaluation> {
    index
        .accounts()
        .map(|k| (k.clone(), engine::evaluate_account(index, &k)))
        .collect()
}

fn roles_of(objects: &[Object]) -> BTreeMap<String, Role> {
    objects
        .iter()
        .filter_map(|o| {
            if let Object::Role(r) = o {
                Some((o.name(), r.clone()))
            } else {
                None
            }
        })
        .collect()
}

/// What a role grants after includes, computed independently of the engine: every role reachable
/// through includes of existing, visible roles.
fn closure(roles: &BTreeMap<String, Role>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    let mut perms = BTreeSet::new();
    while let Some(n) = todo.pop() {
        let Some(role) = roles.get(&n) else { continue };
        if !seen.insert(n.clone()) {
            continue;
        }
        perms.extend(role.spec.permissions.iter().cloned());
        for inc in &role.spec.includes {
            let visible = roles
                .get(inc)
                .is_some_and(|t| t.spec.account.is_none() || t.spec.account == role.spec.account);
            if visible {
                todo.push(inc.clone());
            }
        }
    }
    perms
}

fn binding_of<'a>(objects: &'a [Object], name: &str) -> Option<&'a RoleBinding> {
    objects.iter().find_map(|o| match o {
        Object::RoleBinding(b) if o.name() == name => Some(b),
        _ => None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn evaluation_does_not_depend_on_input_order(
        (world, shuffled) in world().prop_flat_map(|w| { let objs = w.objects.clone(); (Just(w), Just(objs).prop_shuffle()) })
    ) {
        let a = index_of(&world.objects);
        let b = index_of(&shuffled);
        prop_assert_eq!(evaluations(&a), evaluations(&b));
        for (name, _) in roles_of(&world.objects) {
            prop_assert_eq!(engine::evaluate_role(&a, NS, &name), engine::evaluate_role(&b, NS, &name));
        }
    }

    #[test]
    fn no_account_has_two_accepted_owner_bindings(world in world()) {
        let index = index_of(&world.objects);
        let roles = roles_of(&world.objects);
        for (key, eval) in evaluations(&index) {
            let owners: Vec<&String> = eval.bindings.iter()
                .filter(|(n, v)| v.accepted.is_ok() && binding_of(&world.objects, n).is_some_and(|b| roles.get(&b.spec.role).is_some_and(|r| r.spec.owner)))
                .map(|(n, _)| n)
                .collect();
            prop_assert!(owners.len() <= 1, "{key}: {owners:?}");
            let expected_owner = owners.first().and_then(|n| binding_of(&world.objects, n)).map(|b| b.spec.member.clone());
            prop_assert_eq!(&eval.owner, &expected_owner);
            if let Some(name) = owners.first() {
                prop_assert_eq!(name.as_str(), format!("{}-owner", key.account));
            }
        }
    }

    #[test]
    fn no_member_holds_two_exclusive_roles_on_one_scope(world in world()) {
        let index = index_of(&world.objects);
        let roles = roles_of(&world.objects);
        for eval in evaluations(&index).values() {
            let accepted: Vec<&RoleBinding> = eval.bindings.iter()
                .filter(|(_, v)| v.accepted.is_ok())
                .filter_map(|(n, _)| binding_of(&world.objects, n))
                .collect();
            for x in &accepted {
                for y in &accepted {
                    if x.spec.member != y.spec.member || x.spec.role == y.spec.role {
                        continue;
                    }
                    let overlap = x.spec.project.is_none() || y.spec.project.is_none() || x.spec.project == y.spec.project;
                    let (rx, ry) = (&roles[&x.spec.role], &roles[&y.spec.role]);
                    let shared = rx.spec.exclusive_groups.iter().any(|g| ry.spec.exclusive_groups.contains(g));
                    prop_assert!(!(overlap && shared), "{:?} and {:?}", x.metadata.name, y.metadata.name);
                }
            }
        }
    }

    #[test]
    fn effective_permissions_are_the_union_of_accepted_bindings_or_the_defaults(world in world()) {
        let index = index_of(&world.objects);
        let roles = roles_of(&world.objects);
        for (key, eval) in evaluations(&index) {
            let projects: Vec<String> = index.namespace(NS).and_then(|ns| ns.account(&key.account))
                .map(|a| a.spec.projects.iter().map(|p| p.name.clone()).collect()).unwrap_or_default();
            for (member_name, verdict) in &eval.members {
                let member_type = index.namespace(NS).and_then(|ns| ns.member(member_name)).map(|m| m.spec.member_type);
                let accepted: Vec<&RoleBinding> = eval.bindings.iter()
                    .filter(|(_, v)| v.accepted.is_ok() && &v.member == member_name)
                    .filter_map(|(n, _)| binding_of(&world.objects, n))
                    .collect();
                let mut account_level = BTreeSet::new();
                let mut per_project: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for b in &accepted {
                    let grants = closure(&roles, &b.spec.role);
                    match &b.spec.project {
                        None => account_level.extend(grants),
                        Some(p) => per_project.entry(p.clone()).or_default().extend(grants),
                    }
                }
                if accepted.is_empty() {
                    for (name, role) in &roles {
                        let visible = role.spec.account.is_none() || role.spec.account.as_deref() == Some(key.account.as_str());
                        let eligible = member_type.is_some_and(|t| role.spec.member_types.contains(&t));
                        if role.spec.default && visible && eligible && role.spec.scope == RoleScope::Account {
                            account_level.extend(closure(&roles, name));
                        }
                    }
                }
                let got: BTreeSet<String> = verdict.access.permissions.account.iter().cloned().collect();
                prop_assert_eq!(&got, &account_level, "account-level access of {}", member_name);
                for p in &projects {
                    let mut expected = account_level.clone();
                    expected.extend(per_project.get(p).cloned().unwrap_or_default());
                    let got: BTreeSet<String> = verdict.access.permissions.projects.get(p).map(|v| v.iter().cloned().collect()).unwrap_or_default();
                    prop_assert_eq!(&got, &expected, "access of {} on {}", member_name, p);
                }
            }
        }
    }

    #[test]
    fn admission_denies_r5_exactly_when_evaluation_would_reject_the_newcomer(
        world in world(), member in 0..5usize, role in 0..6usize, project in prop::option::of(0..3usize),
    ) {
        let index = index_of(&world.objects);
        // Not stored yet, so no creationTimestamp: the newest binding, as at admission.
        let newcomer = mk_binding("zz-new", "acme", &format!("m{member}"), &format!("r{role}"), project.map(|p| PROJECTS[p]));
        let object: Object = newcomer.clone().into();
        let decision = engine::admit(&index, &Review { operation: Operation::Create, object: Some(&object), old_object: None, requester: None });
        let mut after = index_of(&world.objects);
        after.apply(object.clone());
        let eval = engine::evaluate_account(&after, &AccountKey::new(NS, "acme"));
        let evaluated = eval.bindings.get("zz-new").and_then(|v| v.accepted.as_ref().err()).map(|v| v.rule);
        let denied = match &decision { Decision::Deny(v) => Some(v.rule), Decision::Allow { .. } => None };
        prop_assert_eq!(denied == Some(RuleId::R5), evaluated == Some(RuleId::R5), "{:?} vs {:?}", decision, evaluated);
    }
}
