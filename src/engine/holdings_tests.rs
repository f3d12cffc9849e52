//! [`effective::holdings`], the one answer to "what does this member hold", against the
//! evaluation's Member access for generated accounts: direct and team grants, windows (R18),
//! exclusive roles that lose (R5), a service member that a role does not reach (R7), the default
//! role (R14), at instants before, inside and after the windows.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::context::{Change, Ctx};
use super::effective;
use super::evaluate::evaluate_in;
use super::index::Index;
use crate::api::{Account, Member, Object, Role, RoleBinding, Team};

const MEMBERS: [&str; 3] = ["m0", "m1", "m2"];
const HOUR: i64 = 3600;

fn object<K: serde::de::DeserializeOwned>(kind: &str, name: &str, spec: Value) -> K {
    serde_json::from_value(json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns"},
        "spec": spec,
    }))
    .expect("a valid test object")
}

fn at(hours: i64) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + hours * HOUR).expect("in range")
}

/// (team, subject, role, from, until)
type Grant = (bool, usize, usize, Option<i64>, Option<i64>);

fn index(team: &[usize], grants: &[Grant]) -> Index {
    let mut index = Index::new();
    let mut add = |o: Object| {
        index.apply(o);
    };
    add(object::<Account>("Account", "acme", json!({"projects": [{"name": "p"}]})).into());
    add(object::<Role>(
        "Role",
        "basic",
        json!({"scope": "Account", "permissions": ["basic"], "default": true}),
    )
    .into());
    add(object::<Role>(
        "Role",
        "admin",
        json!({"scope": "Account", "permissions": ["admin"], "exclusiveGroups": ["g"]}),
    )
    .into());
    add(object::<Role>(
        "Role",
        "viewer",
        json!({"scope": "Project", "permissions": ["view"], "exclusiveGroups": ["g"]}),
    )
    .into());
    add(object::<Role>(
        "Role",
        "people",
        json!({"scope": "Account", "permissions": ["people"], "memberTypes": ["User"]}),
    )
    .into());
    for (i, m) in MEMBERS.iter().enumerate() {
        let kind = if i == 2 { "Service" } else { "User" };
        add(object::<Member>("Member", m, json!({"account": "acme", "type": kind})).into());
    }
    let listed: Vec<&str> = team.iter().map(|m| MEMBERS[*m]).collect();
    add(object::<Team>(
        "Team",
        "crew",
        json!({"account": "acme", "members": listed}),
    )
    .into());
    for (i, (on_team, subject, role, from, until)) in grants.iter().enumerate() {
        let (role, project) = [("admin", None), ("viewer", Some("p")), ("people", None)][*role];
        let mut spec = json!({"account": "acme", "role": role});
        if *on_team {
            spec["team"] = json!("crew");
        } else {
            spec["member"] = json!(MEMBERS[*subject]);
        }
        if let Some(p) = project {
            spec["project"] = json!(p);
        }
        if let Some(f) = from {
            spec["validFrom"] = json!(at(*f).to_string());
        }
        if let Some(u) = until {
            spec["validUntil"] = json!(at(*u).to_string());
        }
        let mut binding: RoleBinding = object("RoleBinding", &format!("b{i}"), spec);
        binding.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(-10 + i as i64)),
        );
        add(binding.into());
    }
    index
}

fn grant() -> impl Strategy<Value = Grant> {
    (
        any::<bool>(),
        0..MEMBERS.len(),
        0..3usize,
        prop::option::of(0i64..4),
        prop::option::of(1i64..5),
    )
        .prop_map(|(team, subject, role, from, until)| {
            let until = match (from, until) {
                (Some(f), Some(u)) if u <= f => Some(f + 1),
                (_, u) => u,
            };
            (team, subject, role, from, until)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn holdings_are_the_evaluated_access_of_every_member(
        team in proptest::collection::btree_set(0..MEMBERS.len(), 0..=3),
        grants in vec(grant(), 0..6),
    ) {
        let team: Vec<usize> = team.into_iter().collect();
        let index = index(&team, &grants);
        for hour in -1..6 {
            let ctx = Ctx::new("ns", index.namespace("ns"), "acme", Change::None, at(hour));
            let eval = evaluate_in(&ctx);
            for member in MEMBERS {
                let evaluated = &eval.members[member].access;
                prop_assert_eq!(&effective::holdings(&ctx, member), evaluated, "{} at {}", member, hour);
            }
        }
    }
}

#[test]
fn a_team_grant_is_held_inside_its_window_only() {
    // m0 in team crew, bound admin from hour 1 to hour 3.
    let index = index(&[0], &[(true, 0, 0, Some(1), Some(3))]);
    let held = |hour| {
        let ctx = Ctx::new("ns", index.namespace("ns"), "acme", Change::None, at(hour));
        effective::holdings(&ctx, "m0").roles.account
    };
    assert_eq!(held(0), ["basic"], "not yet open: the default role (R14)");
    assert_eq!(held(1), ["admin"]);
    assert_eq!(held(3), ["basic"], "closed");
}
