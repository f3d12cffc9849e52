//! The figures of the teams issue, on an in-memory tree (10,000 accounts by default; set
//! `ROLEGATE_BENCH_ACCOUNTS`): each account has 7 members, 2 teams of 3 members and 9 bindings of
//! which a third name a team. Prints the median and p99 admission decision for CREATE of a direct
//! and of a team binding and for UPDATE of a team (one member added), and what one Team change
//! costs: the accounts `Index::apply` names, the objects their evaluation covers, and its time.
//! Run with `cargo bench --bench teams` (`ROLEGATE_BENCH_ONLY=team-binding` for one case).

use std::time::{Duration, Instant};

use kube::api::ObjectMeta;
use rolegate::api::*;
use rolegate::engine::{self, AccountKey, Decision, Index, Operation, Review, SchemaRules};

const NS: &str = "bench";

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        ..ObjectMeta::default()
    }
}

fn role(name: &str, scope: RoleScope, perms: &[&str], group: Option<&str>, owner: bool) -> Object {
    Object::Role(Role {
        metadata: meta(name),
        spec: RoleSpec {
            display_name: None,
            scope,
            permissions: perms.iter().map(|p| (*p).into()).collect(),
            includes: Vec::new(),
            owner,
            default: false,
            locked: false,
            exclusive_groups: group.map(|g| vec![g.into()]).unwrap_or_default(),
            member_types: vec![MemberType::User, MemberType::Service],
            account: None,
        },
        status: None,
    })
}

fn binding(
    name: &str,
    account: &str,
    subject: Subject<'_>,
    role: &str,
    project: Option<&str>,
) -> Object {
    let (member, team) = match subject {
        Subject::Member(m) => (Some(m.into()), None),
        Subject::Team(t) => (None, Some(t.into())),
    };
    Object::RoleBinding(RoleBinding {
        metadata: meta(name),
        spec: RoleBindingSpec {
            account: account.into(),
            member,
            team,
            role: role.into(),
            project: project.map(Into::into),
            valid_from: None,
            valid_until: None,
        },
        status: None,
    })
}

fn team(name: &str, account: &str, members: &[String]) -> Object {
    Object::Team(Team {
        metadata: meta(name),
        spec: TeamSpec {
            account: account.into(),
            display_name: None,
            members: members.to_vec(),
        },
        status: None,
    })
}

fn tree(accounts: usize) -> (Index, usize) {
    let mut index = Index::new();
    let mut objects = 0;
    let mut put = |index: &mut Index, o: Object| {
        index.apply(o);
        objects += 1;
    };
    put(
        &mut index,
        role(
            "owner",
            RoleScope::Account,
            &["account.own", "members.manage"],
            None,
            true,
        ),
    );
    put(
        &mut index,
        role(
            "admin",
            RoleScope::Account,
            &["account.manage"],
            None,
            false,
        ),
    );
    put(
        &mut index,
        role("support", RoleScope::Account, &["tickets"], None, false),
    );
    put(
        &mut index,
        role(
            "project-admin",
            RoleScope::Project,
            &["p.manage", "p.view"],
            Some("pa"),
            false,
        ),
    );
    put(
        &mut index,
        role(
            "project-viewer",
            RoleScope::Project,
            &["p.view"],
            Some("pa"),
            false,
        ),
    );
    for a in 0..accounts {
        let acc = format!("a{a}");
        let mut account = Account::new(
            &acc,
            AccountSpec {
                display_name: None,
                projects: vec![
                    Project {
                        name: "web".into(),
                        display_name: None,
                    },
                    Project {
                        name: "shop".into(),
                        display_name: None,
                    },
                ],
                ownership: Ownership::default(),
                redundant_bindings: RedundantPolicy::Warn,
                member_admin_permission: Some("members.manage".into()),
                bind_permission: None,
            },
        );
        account.metadata.namespace = Some(NS.into());
        put(&mut index, account.into());
        let members: Vec<String> = (0..7).map(|m| format!("{acc}-m{m}")).collect();
        for m in &members {
            let mut member = Member::new(
                m,
                MemberSpec {
                    account: acc.as_str().into(),
                    member_type: MemberType::User,
                    email: None,
                    display_name: None,
                    identity: None,
                },
            );
            member.metadata.namespace = Some(NS.into());
            put(&mut index, member.into());
        }
        let t0 = format!("{acc}-t0");
        let t1 = format!("{acc}-t1");
        put(&mut index, team(&t0, &acc, &members[1..4]));
        put(&mut index, team(&t1, &acc, &members[3..6]));
        put(
            &mut index,
            binding(
                &format!("{acc}-owner"),
                &acc,
                Subject::Member(&members[0]),
                "owner",
                None,
            ),
        );
        put(
            &mut index,
            binding(
                &format!("{acc}-t0-pa-web"),
                &acc,
                Subject::Team(&t0),
                "project-admin",
                Some("web"),
            ),
        );
        put(
            &mut index,
            binding(
                &format!("{acc}-t1-support"),
                &acc,
                Subject::Team(&t1),
                "support",
                None,
            ),
        );
        put(
            &mut index,
            binding(
                &format!("{acc}-t1-pv-shop"),
                &acc,
                Subject::Team(&t1),
                "project-viewer",
                Some("shop"),
            ),
        );
        for (i, m) in members.iter().enumerate().skip(1).take(5) {
            let role = if i % 2 == 0 {
                "admin"
            } else {
                "project-viewer"
            };
            let project = (role == "project-viewer").then_some("shop");
            put(
                &mut index,
                binding(
                    &format!("{m}-{role}"),
                    &acc,
                    Subject::Member(m),
                    role,
                    project,
                ),
            );
        }
    }
    (index, objects)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Times every decision both ways, taking turns going first (the second finds the caches warm):
/// as the webhook decides (the API server has run the CRDs' CEL rules already) and as `check`
/// does (CEL included).
fn measure(index: &Index, what: &str, reviews: &[(Operation, Option<Object>, Option<Object>)]) {
    let ways = [SchemaRules::Enforced, SchemaRules::Evaluate];
    let mut times = [Vec::new(), Vec::new()];
    let (mut allowed, mut denied) = (0, 0);
    for (i, (operation, new, old)) in reviews.iter().enumerate() {
        let review = Review {
            operation: *operation,
            object: new.as_ref(),
            old_object: old.as_ref(),
            requester: None,
        };
        for way in [i % 2, 1 - i % 2] {
            let start = Instant::now();
            let decision = engine::admit_with(
                index,
                &review,
                rolegate::engine::Timestamp::now(),
                ways[way],
            );
            times[way].push(start.elapsed());
            if way == 0 {
                match decision {
                    Decision::Allow { .. } => allowed += 1,
                    Decision::Deny(_) => denied += 1,
                }
            }
        }
    }
    let [webhook, offline] = times.map(|mut t| {
        t.sort();
        (percentile(&t, 0.5), percentile(&t, 0.99))
    });
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{what}: webhook median {:.1} µs, p99 {:.1} µs | with CEL (check) median {:.1} µs, p99 {:.1} µs | {} decisions ({allowed} allowed, {denied} denied)",
        us(webhook.0),
        us(webhook.1),
        us(offline.0),
        us(offline.1),
        reviews.len()
    );
}

fn main() {
    let accounts: usize = std::env::var("ROLEGATE_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let start = Instant::now();
    let (mut index, objects) = tree(accounts);
    println!(
        "tree: {accounts} accounts, {objects} objects (2 teams of 3 per account, 3 of 9 bindings name a team), indexed in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let samples = 20_000.min(accounts * 2).max(1);
    let pick = |i: usize| format!("a{}", (i * 7919) % accounts);
    let direct: Vec<_> = (0..samples)
        .map(|i| {
            let acc = pick(i);
            (
                Operation::Create,
                Some(binding(
                    &format!("{acc}-new-{i}"),
                    &acc,
                    Subject::Member(&format!("{acc}-m4")),
                    "support",
                    None,
                )),
                None,
            )
        })
        .collect();
    let teamed: Vec<_> = (0..samples)
        .map(|i| {
            let acc = pick(i);
            (
                Operation::Create,
                Some(binding(
                    &format!("{acc}-newt-{i}"),
                    &acc,
                    Subject::Team(&format!("{acc}-t0")),
                    "project-viewer",
                    Some("shop"),
                )),
                None,
            )
        })
        .collect();
    let updates: Vec<_> = (0..samples)
        .map(|i| {
            let acc = pick(i);
            let old: Vec<String> = (1..4).map(|m| format!("{acc}-m{m}")).collect();
            let mut new = old.clone();
            new.push(format!("{acc}-m6"));
            (
                Operation::Update,
                Some(team(&format!("{acc}-t0"), &acc, &new)),
                Some(team(&format!("{acc}-t0"), &acc, &old)),
            )
        })
        .collect();
    // ROLEGATE_BENCH_ONLY=direct|team-binding|team-update runs one case, e.g. under a profiler.
    let only = std::env::var("ROLEGATE_BENCH_ONLY").ok();
    let cases = [
        ("direct", "admission CREATE direct binding", &direct),
        ("team-binding", "admission CREATE team binding  ", &teamed),
        ("team-update", "admission UPDATE team (+1)     ", &updates),
    ];
    for round in 0..2 {
        println!("-- round {}", round + 1);
        for (id, what, reviews) in cases {
            if only.as_deref().is_none_or(|o| o == id) {
                measure(&index, what, reviews);
            }
        }
    }
    // One Team change: what it names and what re-evaluating that costs.
    let acc = pick(1);
    let members: Vec<String> = (1..5).map(|m| format!("{acc}-m{m}")).collect();
    let touched = index.apply(team(&format!("{acc}-t0"), &acc, &members));
    let mut covered = 0;
    let mut times = Vec::new();
    for key in &touched {
        let (m, b) = index.account_objects(key);
        covered += m.len() + b.len() + index.account_teams(key).len() + 1;
        for _ in 0..1000 {
            let start = Instant::now();
            let eval = engine::evaluate_account(
                &index,
                &AccountKey::new(key.namespace.clone(), key.account.clone()),
                rolegate::engine::Timestamp::now(),
            );
            times.push(start.elapsed());
            std::hint::black_box(eval);
        }
    }
    times.sort();
    println!(
        "one Team change: names {} account(s), re-evaluates {covered} objects of {objects}; evaluate_account median {:.1} µs",
        touched.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e6
    );
}
