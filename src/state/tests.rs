use super::*;
use crate::api::{Account, Member, Role, RoleBinding};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::json;
use triggers::Requests;

type Drained = [Vec<String>; 4];

fn drain<K: kube::Resource<DynamicType = ()>>(rx: &mut Requests<K>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Some(r)) = rx.next().now_or_never() {
        out.push(r.name);
    }
    out
}

use futures::FutureExt;

fn drain_all(rx: &mut Receivers) -> Drained {
    [
        drain(&mut rx.accounts),
        drain(&mut rx.members),
        drain(&mut rx.roles),
        drain(&mut rx.bindings),
    ]
}

fn leading() -> (Arc<Shared>, Receivers) {
    let shared = Shared::new();
    let (triggers, received) = Triggers::bounded(64, &shared.metrics);
    shared.lead(triggers);
    (shared, received)
}

fn object<K: DeserializeOwned>(kind: &str, name: &str, spec: serde_json::Value) -> K {
    serde_json::from_value(json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": "team", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec,
    }))
    .expect("a valid test object")
}

fn account() -> Account {
    object("Account", "acme", json!({"projects": [{"name": "web"}]}))
}

fn member(name: &str, display: &str) -> Member {
    object(
        "Member",
        name,
        json!({"account": "acme", "type": "User", "displayName": display}),
    )
}

fn role() -> Role {
    object(
        "Role",
        "viewer",
        json!({"scope": "Account", "permissions": ["billing.read"]}),
    )
}

fn binding(name: &str, member: &str) -> RoleBinding {
    object(
        "RoleBinding",
        name,
        json!({"account": "acme", "member": member, "role": "viewer"}),
    )
}

fn apply(shared: &Shared, o: impl Into<Object>) {
    shared.observe_apply(o.into(), false);
}

fn admit_update(shared: &Shared, old: Object, new: Object) -> bool {
    let review = Review {
        operation: Operation::Update,
        object: Some(&new),
        old_object: Some(&old),
        requester: None,
    };
    shared
        .admit(&review, false, crate::engine::Timestamp::now())
        .is_some_and(|d| d.is_allowed())
}

fn display_name(shared: &Shared, name: &str) -> Option<String> {
    let index = shared.index.read().expect("lock");
    let member = index.namespace("team")?.member(name)?;
    member.spec.display_name.clone()
}

fn loaded() -> (Arc<Shared>, Receivers) {
    let (shared, mut received) = leading();
    apply(&shared, account());
    apply(&shared, role());
    apply(&shared, member("ann", "Ann"));
    apply(&shared, binding("ann-viewer", "ann"));
    drain_all(&mut received);
    (shared, received)
}

#[test]
fn a_status_change_reconciles_only_its_own_object() {
    let (shared, mut received) = loaded();
    let mut written = binding("ann-viewer", "ann");
    written.status = Some(crate::api::RoleBindingStatus {
        observed_generation: Some(1),
        ..Default::default()
    });
    apply(&shared, written);
    let nothing: Vec<String> = Vec::new();
    assert_eq!(
        drain_all(&mut received),
        [
            nothing.clone(),
            nothing.clone(),
            nothing,
            vec!["ann-viewer".to_owned()]
        ]
    );
}

#[test]
fn the_echo_of_a_status_write_reconciles_nothing() {
    let (shared, mut received) = loaded();
    shared.observe_apply(binding("ann-viewer", "ann").into(), true);
    assert!(drain_all(&mut received).iter().all(Vec::is_empty));
    // A spec change is never an echo, whatever its status.
    shared.observe_apply(binding("ann-viewer", "bob").into(), true);
    assert_eq!(drain_all(&mut received)[0], ["acme"]);
}

#[test]
fn a_resync_reconciles_every_object_once() {
    let (shared, mut received) = loaded();
    shared
        .reconcile_all()
        .now_or_never()
        .expect("room for four bulk requests");
    let [accounts, members, roles, bindings] = drain_all(&mut received);
    assert_eq!(accounts, ["acme"]);
    assert_eq!(members, ["ann"]);
    assert_eq!(roles, ["viewer"]);
    assert_eq!(bindings, ["ann-viewer"]);
}

#[test]
fn a_spec_change_reconciles_the_account_and_the_role() {
    let (shared, mut received) = loaded();
    apply(&shared, binding("bob-viewer", "ann"));
    let [accounts, members, roles, bindings] = drain_all(&mut received);
    assert_eq!(accounts, ["acme"]);
    assert_eq!(members, ["ann"]);
    assert!(roles.contains(&"viewer".to_owned()), "{roles:?}");
    assert_eq!(bindings, ["ann-viewer", "bob-viewer"]);
}

#[test]
fn an_admitted_object_stays_over_older_events_and_its_arrival_reconciles() {
    let (shared, mut received) = loaded();
    let (old, new) = (member("ann", "Ann"), member("ann", "Ann Lee"));
    assert!(admit_update(
        &shared,
        old.clone().into(),
        new.clone().into()
    ));
    assert_eq!(display_name(&shared, "ann").as_deref(), Some("Ann Lee"));
    assert_eq!(
        drain_all(&mut received).concat(),
        Vec::<String>::new(),
        "admission alone reconciles nothing"
    );

    // A status write of the old version arrives first: the admitted spec stays.
    apply(&shared, old);
    assert_eq!(display_name(&shared, "ann").as_deref(), Some("Ann Lee"));
    assert_eq!(drain_all(&mut received)[1], ["ann"]);

    // The admitted version lands: the index already held it, yet it is a change to reconcile.
    apply(&shared, new);
    let [accounts, members, ..] = drain_all(&mut received);
    assert_eq!(
        (accounts, members),
        (vec!["acme".to_owned()], vec!["ann".to_owned()])
    );
    assert_eq!(shared.overlay_len(), 0);
}

#[test]
fn an_admitted_object_that_never_lands_gives_way_to_what_the_watch_last_said() {
    let (shared, mut received) = loaded();
    assert!(admit_update(
        &shared,
        member("ann", "Ann").into(),
        member("ann", "Ann Lee").into()
    ));
    // Someone else's update lands instead of the admitted one.
    apply(&shared, member("ann", "Annie"));
    assert_eq!(display_name(&shared, "ann").as_deref(), Some("Ann Lee"));
    drain_all(&mut received);
    shared.expire_overlay_after(Duration::ZERO);
    assert_eq!(display_name(&shared, "ann").as_deref(), Some("Annie"));
    assert_eq!(shared.overlay_len(), 0);
    // The restored version is a change: its account reconciles.
    assert_eq!(drain_all(&mut received)[0], ["acme"]);
}

#[test]
fn a_relist_keeps_an_admitted_create_the_watch_has_not_delivered() {
    let (shared, _received) = loaded();
    let new = member("bob", "Bob");
    let review = Review {
        operation: Operation::Create,
        object: Some(&new.clone().into()),
        old_object: None,
        requester: None,
    };
    assert!(
        shared
            .admit(&review, false, crate::engine::Timestamp::now())
            .is_some_and(|d| d.is_allowed())
    );
    // A list that began before the create does not have it.
    shared.observe_relisted(Kind::Member, vec![("team".to_owned(), "bob".to_owned())]);
    assert_eq!(display_name(&shared, "bob").as_deref(), Some("Bob"));
}

#[test]
fn a_relist_drops_what_the_list_no_longer_has_and_reconciles_its_account() {
    let (shared, mut received) = loaded();
    apply(&shared, member("bob", "Bob"));
    drain_all(&mut received);
    shared.observe_relisted(Kind::Member, vec![("team".to_owned(), "bob".to_owned())]);
    assert_eq!(display_name(&shared, "bob"), None);
    assert_eq!(drain_all(&mut received)[0], ["acme"]);
    assert!(shared.synced[Kind::Member as usize].load(Ordering::Acquire));
}

#[test]
fn events_before_leading_are_in_the_snapshot_and_after_it_are_sent() {
    let shared = Shared::new();
    apply(&shared, account());
    let (triggers, mut received) = Triggers::bounded(64, &shared.metrics);
    shared.lead(triggers);
    shared
        .reconcile_all()
        .now_or_never()
        .expect("room for one bulk request");
    assert_eq!(drain_all(&mut received)[0], ["acme"]);
    apply(&shared, member("ann", "Ann"));
    assert_eq!(drain_all(&mut received)[1], ["ann"]);
}

#[test]
fn a_full_queue_loses_no_request_and_counts_the_overflow() {
    let shared = Shared::new();
    let (triggers, mut received) = Triggers::bounded(2, &shared.metrics);
    shared.lead(triggers);
    apply(&shared, account());
    apply(&shared, role());
    for i in 0..10 {
        apply(&shared, member(&format!("m{i}"), "M"));
    }
    let mut members = drain(&mut received.members);
    members.sort();
    members.dedup();
    let want: Vec<String> = {
        let mut w: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
        w.sort();
        w
    };
    assert_eq!(members, want);
    let text = shared.metrics.encode();
    assert!(
        text.lines().any(
            |l| l.starts_with(r#"rolegate_trigger_overflows_total{kind="Member"}"#)
                && !l.ends_with(" 0")
        ),
        "{text}"
    );
}

#[test]
fn an_account_is_evaluated_once_per_change() {
    let (shared, _received) = loaded();
    let key = AccountKey::new("team", "acme");
    let made: Vec<bool> = (0..3)
        .map(|_| {
            shared
                .evaluation(&key, crate::engine::Timestamp::now())
                .expect("evaluation")
                .1
        })
        .collect();
    assert_eq!(made, [true, false, false]);
    apply(&shared, binding("bob-viewer", "ann"));
    let (eval, made) = shared
        .evaluation(&key, crate::engine::Timestamp::now())
        .expect("evaluation");
    assert!(made, "a change evaluates again");
    assert!(eval.bindings.contains_key("bob-viewer"));
    // A status-only change does not.
    apply(&shared, binding("bob-viewer", "ann"));
    assert!(
        !shared
            .evaluation(&key, crate::engine::Timestamp::now())
            .expect("evaluation")
            .1
    );
}

#[test]
fn a_deleted_account_leaves_the_conflicts_gauge() {
    let (shared, _received) = loaded();
    let key = AccountKey::new("team", "acme");
    shared
        .metrics
        .set_conflicts(&key, [("R4".to_owned(), 2)].into());
    shared.observe_delete(account().into());
    let text = shared.metrics.encode();
    assert!(
        text.contains(r#"rolegate_conflicts{rule="R4"} 0"#),
        "{text}"
    );
}

fn team(name: &str, members: &[&str]) -> crate::api::Team {
    object("Team", name, json!({"account": "acme", "members": members}))
}

#[test]
fn a_team_change_reconciles_the_team_and_a_member_it_waits_for_reconciles_it_again() {
    let (shared, mut received) = loaded();
    apply(&shared, team("web", &["ann", "carol"]));
    assert_eq!(drain(&mut received.teams), ["web"]);
    let [accounts, members, _, _] = drain_all(&mut received);
    assert_eq!(
        (accounts, members),
        (vec!["acme".to_owned()], vec!["ann".to_owned()])
    );

    // carol arrives: the team that lists her is reconciled, so its `Ready` can turn True.
    apply(&shared, member("carol", "Carol"));
    assert_eq!(drain(&mut received.teams), ["web"]);

    // A status write on the team reconciles only the team.
    drain_all(&mut received);
    let mut written = team("web", &["ann", "carol"]);
    written.status = Some(crate::api::TeamStatus {
        members: 2,
        ..Default::default()
    });
    apply(&shared, written);
    assert_eq!(drain(&mut received.teams), ["web"]);
    let nothing: Vec<String> = Vec::new();
    assert_eq!(
        drain_all(&mut received),
        [nothing.clone(), nothing.clone(), nothing.clone(), nothing]
    );
}

fn in_account(mut o: serde_json::Value, account: &str) -> serde_json::Value {
    o["spec"]["account"] = json!(account);
    o["metadata"]["name"] = json!(format!(
        "{account}-{}",
        o["metadata"]["name"].as_str().unwrap_or_default()
    ));
    o
}

/// Two accounts whose bindings name the one role, `viewer`.
fn two_accounts() -> (Arc<Shared>, Receivers) {
    let (shared, mut received) = leading();
    apply(&shared, role());
    for a in ["acme", "beta"] {
        let account: Account = object("Account", a, json!({"projects": [{"name": "web"}]}));
        apply(&shared, account);
        let m = serde_json::to_value(member("ann", "Ann")).expect("json");
        let m: Member = serde_json::from_value(in_account(m, a)).expect("member");
        apply(&shared, m);
        let b = serde_json::to_value(binding("ann-viewer", "ann")).expect("json");
        let mut b = in_account(b, a);
        b["spec"]["member"] = json!(format!("{a}-ann"));
        let b: RoleBinding = serde_json::from_value(b).expect("binding");
        apply(&shared, b);
    }
    drain_all(&mut received);
    (shared, received)
}

#[tokio::test(start_paused = true)]
async fn a_change_to_many_accounts_sweeps_them_through_the_bulk_queues_after_the_delay() {
    let (shared, mut received) = two_accounts();
    let changed: Role = object(
        "Role",
        "viewer",
        json!({"scope": "Account", "permissions": ["billing.read", "billing.write"]}),
    );
    apply(&shared, changed);
    let [accounts, members, roles, bindings] = drain_all(&mut received);
    assert_eq!(roles, ["viewer"], "the role itself is asked for at once");
    assert!(
        accounts.is_empty() && members.is_empty() && bindings.is_empty(),
        "no request per object of the accounts: {accounts:?} {members:?} {bindings:?}"
    );
    assert_eq!(shared.sweep.len(), (2, 0));
    let delay = Duration::from_millis(300);
    let sweeper = tokio::spawn({
        let shared = shared.clone();
        async move { shared.sweep_accounts(delay, Duration::from_secs(30)).await }
    });
    tokio::time::sleep(delay / 2).await;
    assert!(
        drain_all(&mut received).iter().all(Vec::is_empty),
        "within the delay"
    );
    tokio::time::sleep(delay).await;
    let [accounts, members, _, bindings] = drain_all(&mut received);
    assert_eq!(accounts, ["acme", "beta"]);
    assert_eq!(members, ["acme-ann", "beta-ann"]);
    assert_eq!(bindings, ["acme-ann-viewer", "beta-ann-viewer"]);
    assert_eq!(shared.sweep.len(), (0, 0));
    sweeper.abort();
}

#[tokio::test(start_paused = true)]
async fn a_held_account_is_swept_once_its_namespace_has_been_quiet_for_the_grace() {
    let (shared, mut received) = two_accounts();
    let grace = Duration::from_secs(30);
    shared.sweep.hold(AccountKey::new("team", "acme"));
    let sweeper = tokio::spawn({
        let shared = shared.clone();
        async move { shared.sweep_accounts(Duration::ZERO, grace).await }
    });
    tokio::time::sleep(grace / 2).await;
    // Another object arrives in the namespace: the quiet starts again.
    apply(
        &shared,
        object::<Member>(
            "Member",
            "acme-bob",
            json!({"account": "acme", "type": "User"}),
        ),
    );
    drain_all(&mut received);
    tokio::time::sleep(grace - Duration::from_secs(1)).await;
    assert!(
        drain_all(&mut received).iter().all(Vec::is_empty),
        "still busy"
    );
    assert_eq!(shared.sweep.len(), (0, 1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let [accounts, members, _, bindings] = drain_all(&mut received);
    assert_eq!(accounts, ["acme"]);
    assert_eq!(members, ["acme-ann", "acme-bob"]);
    assert_eq!(bindings, ["acme-ann-viewer"]);
    assert_eq!(shared.sweep.len(), (0, 0));
    sweeper.abort();
}
