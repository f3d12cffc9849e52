//! Time-bound grants (R18) through the engine's public entry points: every boundary (before,
//! inside, after, open-ended on either side), R5 only for overlapping windows, R9 over the whole
//! window, R14 while no grant is active, team bindings, the owner binding (R1), the next
//! boundary, and admission of an UPDATE that moves `validUntil`.

mod support;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rolegate::api::*;
use rolegate::engine::rules::window::Activity;
use rolegate::engine::{
    self, AccountEvaluation, Decision, Index, Operation, Reason, Review, Timestamp,
};
use support::*;

const MAY: &str = "2026-05-01T00:00:00Z";
const JUNE: &str = "2026-06-01T00:00:00Z";
const JULY: &str = "2026-07-01T00:00:00Z";

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn windowed(mut b: RoleBinding, from: Option<&str>, until: Option<&str>) -> RoleBinding {
    b.spec.valid_from = from.map(|s| Time(t(s)));
    b.spec.valid_until = until.map(|s| Time(t(s)));
    b
}

/// acme (owner alice, member bob) with project roles `viewer` and `admin` in one exclusive
/// group, a shared role `web`, and a default role `basic`.
fn base() -> Index {
    let mut index = owned_account();
    let mut viewer = mk_role("viewer", RoleScope::Project, &["project.view"]);
    viewer.spec.exclusive_groups = vec!["access".into()];
    let mut admin = mk_role(
        "admin",
        RoleScope::Project,
        &["project.manage", "project.view"],
    );
    admin.spec.exclusive_groups = vec!["access".into()];
    let mut basic = mk_role("basic", RoleScope::Account, &["account.view"]);
    basic.spec.default = true;
    index.apply(viewer.into());
    index.apply(admin.into());
    index.apply(basic.into());
    index.apply(mk_role("web", RoleScope::Project, &["web.manage"]).into());
    index
}

fn at(index: &Index, now: &str) -> AccountEvaluation {
    engine::evaluate_account(index, &acme(), t(now))
}

fn shop_permissions(eval: &AccountEvaluation, member: &str) -> Vec<String> {
    eval.members[member]
        .access
        .permissions
        .projects
        .get("shop")
        .cloned()
        .unwrap_or_default()
}

/// Whether `member` may manage the web of project shop: what the `web` role grants.
fn has_web(eval: &AccountEvaluation, member: &str) -> bool {
    shop_permissions(eval, member).contains(&"web.manage".to_owned())
}

fn admit(index: &Index, op: Operation, old: Option<Object>, new: Object, now: &str) -> Decision {
    engine::admit(
        index,
        &Review {
            operation: op,
            object: Some(&new),
            old_object: old.as_ref(),
            requester: None,
        },
        t(now),
    )
}

fn denied_by(decision: &Decision) -> Option<Reason> {
    match decision {
        Decision::Deny(v) => Some(v.reason),
        Decision::Allow { .. } => None,
    }
}

#[test]
fn a_closed_window_grants_only_inside_it() {
    let mut index = base();
    let b = mk_binding("bob-web", "acme", "bob", "web", Some("shop"));
    index.apply(windowed(b, Some(JUNE), Some(JULY)).into());

    let before = at(&index, MAY);
    let v = &before.bindings["bob-web"];
    assert!(
        v.accepted.is_ok(),
        "outside its window a binding is accepted"
    );
    assert_eq!(v.activity, Activity::NotYetActive(t(JUNE)));
    let why = v.inactive.as_ref().expect("inactive");
    assert_eq!(why.reason, Reason::NotYetActive);
    assert!(why.message.contains("2026-06-01T00:00:00Z"), "{why}");
    assert!(!has_web(&before, "bob"));
    assert_eq!(v.next_boundary, Some(t(JUNE)));

    let inside = at(&index, JUNE);
    assert_eq!(inside.bindings["bob-web"].activity, Activity::Active);
    assert!(inside.bindings["bob-web"].inactive.is_none());
    assert!(has_web(&inside, "bob"));
    assert_eq!(inside.bindings["bob-web"].next_boundary, Some(t(JULY)));

    let after = at(&index, JULY);
    let v = &after.bindings["bob-web"];
    assert_eq!(v.activity, Activity::Expired(t(JULY)));
    assert_eq!(v.inactive.as_ref().map(|i| i.reason), Some(Reason::Expired));
    assert!(!has_web(&after, "bob"));
    assert_eq!(v.next_boundary, None);
    assert_eq!(
        after.expired().map(|(n, _)| n).collect::<Vec<_>>(),
        ["bob-web"]
    );
}

#[test]
fn open_ended_windows_grant_on_their_open_side() {
    let mut index = base();
    let since = mk_binding("bob-web", "acme", "bob", "web", Some("shop"));
    index.apply(windowed(since, Some(JUNE), None).into());
    assert!(!has_web(&at(&index, MAY), "bob"));
    assert!(has_web(&at(&index, "2099-01-01T00:00:00Z"), "bob"));

    let mut index = base();
    let until = mk_binding("bob-web", "acme", "bob", "web", Some("shop"));
    index.apply(windowed(until, None, Some(JUNE)).into());
    assert!(has_web(&at(&index, "2000-01-01T00:00:00Z"), "bob"));
    assert!(!has_web(&at(&index, JUNE), "bob"));
}

#[test]
fn a_member_whose_grants_are_all_outside_their_windows_holds_the_default_roles() {
    let mut index = base();
    let b = mk_binding("bob-web", "acme", "bob", "web", Some("shop"));
    index.apply(windowed(b, Some(JUNE), Some(JULY)).into());
    let before = at(&index, MAY);
    assert!(before.members["bob"].access.defaulted, "R14 meanwhile");
    assert_eq!(before.members["bob"].access.roles.account, ["basic"]);
    assert!(before.members["bob"].sources.is_empty());
    let inside = at(&index, JUNE);
    assert!(!inside.members["bob"].access.defaulted);
    assert_eq!(inside.members["bob"].sources.len(), 1);
}

#[test]
fn r5_exclusive_grants_conflict_only_when_their_windows_overlap() {
    // Viewer until June, admin from June: adjacent half-open windows, no conflict.
    let mut index = base();
    let viewer = created_at(
        mk_binding("bob-view", "acme", "bob", "viewer", Some("shop")),
        1,
    );
    index.apply(windowed(viewer, None, Some(JUNE)).into());
    let admin = created_at(
        mk_binding("bob-admin", "acme", "bob", "admin", Some("shop")),
        2,
    );
    index.apply(windowed(admin.clone(), Some(JUNE), None).into());
    let eval = at(&index, MAY);
    assert!(eval.bindings["bob-view"].accepted.is_ok());
    assert!(eval.bindings["bob-admin"].accepted.is_ok());
    assert_eq!(shop_permissions(&eval, "bob"), ["project.view"]);
    assert_eq!(
        shop_permissions(&at(&index, JUNE), "bob"),
        ["project.manage", "project.view"]
    );

    // One day of overlap: the newer one loses, even though neither overlap day has come yet.
    let overlapping = windowed(admin, Some("2026-05-31T00:00:00Z"), None);
    index.apply(overlapping.into());
    let eval = at(&index, "2026-01-01T00:00:00Z");
    let lost = eval.bindings["bob-admin"]
        .accepted
        .as_ref()
        .expect_err("R5");
    assert_eq!(lost.reason, Reason::ExclusiveRoleConflict);
    assert!(lost.message.contains("overlapping window"), "{lost}");
    assert!(eval.bindings["bob-view"].accepted.is_ok());
}

#[test]
fn an_update_that_extends_valid_until_into_an_exclusive_grant_is_denied() {
    let mut index = base();
    let viewer = created_at(
        mk_binding("bob-view", "acme", "bob", "viewer", Some("shop")),
        1,
    );
    let viewer = windowed(viewer, None, Some(JUNE));
    index.apply(viewer.clone().into());
    let admin = created_at(
        mk_binding("bob-admin", "acme", "bob", "admin", Some("shop")),
        2,
    );
    index.apply(windowed(admin, Some(JUNE), None).into());

    // The viewer is older, so widening it would take the admin from June away from bob: the
    // admin's grant is judged again, as when bob joins a team, and the update is denied.
    let extended = windowed(viewer.clone(), None, Some(JULY));
    let decision = admit(
        &index,
        Operation::Update,
        Some(viewer.clone().into()),
        extended.into(),
        MAY,
    );
    assert_eq!(
        denied_by(&decision),
        Some(Reason::ExclusiveRoleConflict),
        "{decision:?}"
    );
    // Shortening or removing a window is judged as what it grants.
    let shortened = windowed(viewer.clone(), None, Some(MAY));
    let shorter = admit(
        &index,
        Operation::Update,
        Some(viewer.clone().into()),
        shortened.into(),
        "2026-04-01T00:00:00Z",
    );
    assert!(shorter.is_allowed(), "{shorter:?}");

    // A new exclusive grant whose window overlaps the admin's is denied at CREATE.
    let new_viewer = windowed(
        mk_binding("bob-view2", "acme", "bob", "viewer", Some("shop")),
        Some("2026-06-15T00:00:00Z"),
        None,
    );
    let create = admit(&index, Operation::Create, None, new_viewer.into(), MAY);
    assert_eq!(denied_by(&create), Some(Reason::ExclusiveRoleConflict));
    // Before June: the same viewer that ends when the admin starts is legal.
    let adjacent = windowed(
        mk_binding("bob-view2", "acme", "bob", "viewer", Some("shop")),
        Some(MAY),
        Some(JUNE),
    );
    assert!(admit(&index, Operation::Create, None, adjacent.into(), MAY).is_allowed());
}

#[test]
fn extending_the_newer_grant_into_the_older_one_is_denied() {
    let mut index = base();
    let admin = created_at(
        mk_binding("bob-admin", "acme", "bob", "admin", Some("shop")),
        1,
    );
    index.apply(windowed(admin, Some(JUNE), None).into());
    let viewer = created_at(
        mk_binding("bob-view", "acme", "bob", "viewer", Some("shop")),
        2,
    );
    let viewer = windowed(viewer, None, Some(JUNE));
    index.apply(viewer.clone().into());
    let extended = windowed(viewer.clone(), None, Some(JULY));
    let decision = admit(
        &index,
        Operation::Update,
        Some(viewer.into()),
        extended.into(),
        MAY,
    );
    assert_eq!(
        denied_by(&decision),
        Some(Reason::ExclusiveRoleConflict),
        "{decision:?}"
    );
}

#[test]
fn r9_a_grant_is_redundant_only_if_covered_for_its_whole_window() {
    let mut index = base();
    let always = created_at(mk_binding("bob-web", "acme", "bob", "web", Some("shop")), 1);
    index.apply(always.into());
    let june = created_at(
        mk_binding("bob-web-june", "acme", "bob", "web", Some("shop")),
        2,
    );
    index.apply(windowed(june, Some(JUNE), Some(JULY)).into());
    let eval = at(&index, MAY);
    assert!(eval.bindings["bob-web-june"].redundant.is_some());
    assert!(eval.bindings["bob-web"].redundant.is_none());

    // A June-only grant does not cover one that lasts forever, whichever is older.
    let mut index = base();
    let june = created_at(
        mk_binding("bob-web-june", "acme", "bob", "web", Some("shop")),
        1,
    );
    index.apply(windowed(june, Some(JUNE), Some(JULY)).into());
    let always = created_at(mk_binding("bob-web", "acme", "bob", "web", Some("shop")), 2);
    index.apply(always.into());
    let eval = at(&index, MAY);
    assert!(eval.bindings["bob-web"].redundant.is_none());
    assert!(eval.bindings["bob-web-june"].redundant.is_some());
}

#[test]
fn windows_apply_to_team_bindings() {
    let mut index = base();
    index.apply(mk_member("carol", "acme", MemberType::User).into());
    index.apply(mk_team("agency", "acme", &["bob", "carol"]).into());
    let b = mk_team_binding("agency-web", "acme", "agency", "web", Some("shop"));
    index.apply(windowed(b, None, Some(JULY)).into());
    let inside = at(&index, JUNE);
    assert!(has_web(&inside, "carol"));
    let after = at(&index, JULY);
    assert!(!has_web(&after, "bob"));
    assert!(!has_web(&after, "carol"));
    let why = after.bindings["agency-web"]
        .inactive
        .as_ref()
        .expect("expired");
    assert!(why.message.contains("team agency"), "{why}");
}

#[test]
fn r1_the_owner_binding_has_no_window() {
    let mut index = base();
    let owner = stored_binding(&index, "acme-owner");
    index.apply(windowed(owner, None, Some(JULY)).into());
    let eval = at(&index, JUNE);
    let err = eval.bindings["acme-owner"]
        .accepted
        .as_ref()
        .expect_err("R1");
    assert_eq!(err.reason, Reason::OwnerNotUnique);
    assert!(err.message.contains("no time window"), "{err}");
}

#[test]
fn r18_an_empty_window_is_not_accepted() {
    let mut index = base();
    let b = mk_binding("bob-web", "acme", "bob", "web", Some("shop"));
    index.apply(windowed(b, Some(JULY), Some(JUNE)).into());
    let eval = at(&index, MAY);
    let err = eval.bindings["bob-web"].accepted.as_ref().expect_err("R18");
    assert_eq!(err.reason, Reason::InvalidWindow);
}

#[test]
fn the_next_boundary_is_the_earliest_of_the_account() {
    let mut index = base();
    let a = mk_binding("bob-web", "acme", "bob", "web", Some("shop"));
    index.apply(windowed(a, Some(JUNE), Some(JULY)).into());
    let b = mk_binding("bob-web2", "acme", "bob", "web", Some("web"));
    index.apply(windowed(b, None, Some("2026-06-10T00:00:00Z")).into());
    let eval = at(&index, MAY);
    assert_eq!(eval.next_boundary, Some(t(JUNE)));
    assert!(eval.holds_at(t("2026-05-31T23:59:59Z")));
    assert!(!eval.holds_at(t(JUNE)));
    assert_eq!(
        at(&index, JUNE).next_boundary,
        Some(t("2026-06-10T00:00:00Z"))
    );
    assert_eq!(at(&index, JULY).next_boundary, None);
}

#[test]
fn cel_r18_rejects_valid_from_at_or_after_valid_until() {
    let binding = |from: &str, until: &str| {
        serde_json::json!({"apiVersion": API_VERSION, "kind": "RoleBinding", "metadata": {"name": "b"},
            "spec": {"account": "acme", "member": "bob", "role": "r", "validFrom": from, "validUntil": until}})
    };
    use rolegate::engine::rules::schema::check_json;
    let bad = check_json(Kind::RoleBinding, &binding(JULY, JUNE), None).expect_err("R18");
    assert_eq!(bad.reason, Reason::InvalidWindow);
    assert!(check_json(Kind::RoleBinding, &binding(JUNE, JUNE), None).is_err());
    // Offsets are compared as instants, not as strings.
    assert!(
        check_json(
            Kind::RoleBinding,
            &binding("2026-06-01T01:00:00+02:00", "2026-06-01T00:00:00Z"),
            None
        )
        .is_ok()
    );
    assert!(check_json(Kind::RoleBinding, &binding(JUNE, JULY), None).is_ok());
}
