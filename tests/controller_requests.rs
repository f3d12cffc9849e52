//! Request contracts for the controller, in the style of kube-rs's `ApiServerVerifier`: a
//! tower-test mock stands in for the API server and each test pins down exactly which requests one
//! reconcile makes, in order, with a timeout that catches requests that never come.

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use rolegate::api::*;
use rolegate::controller::{self, Context};
use rolegate::engine::Index;
use rolegate::metrics::Metrics;
use rolegate::state::Shared;
use support::*;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn context(index: Index) -> (Arc<Context>, Handle) {
    context_with_grace(index, Duration::ZERO)
}

/// A context whose findings that may heal wait `grace` before they are reported.
fn context_with_grace(index: Index, grace: Duration) -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NS);
    let shared = Shared::new();
    *shared.index.write().expect("lock") = index;
    let reporter = Reporter {
        controller: "rolegate".into(),
        instance: Some("test".into()),
    };
    let ctx = Context {
        client: client.clone(),
        shared,
        recorder: Recorder::new(client, reporter),
        metrics: Arc::new(Metrics::default()),
        reference_grace: grace,
    };
    (Arc::new(ctx), handle)
}

/// Asserts the next request, answers it, and returns its JSON body.
async fn expect(
    handle: &mut Handle,
    method: Method,
    path_and_query: &str,
    status: u16,
) -> serde_json::Value {
    expect_answered(handle, method, path_and_query, status, "boom").await
}

/// Like [`expect`], with the message of a failure answer.
async fn expect_answered(
    handle: &mut Handle,
    method: Method,
    path_and_query: &str,
    status: u16,
    message: &str,
) -> serde_json::Value {
    let (request, send) = tokio::time::timeout(Duration::from_secs(2), handle.next_request())
        .await
        .expect("the request came in time")
        .expect("the service is alive");
    assert_eq!(request.method(), method);
    assert_eq!(
        request.uri().path_and_query().map(|p| p.as_str()),
        Some(path_and_query)
    );
    let bytes = request.into_body().collect_bytes().await.expect("body");
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    let reply = if status < 400 {
        reply_for(&body)
    } else {
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status, "reason": "Conflict", "message": message})
    };
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).expect("json")))
            .expect("response"),
    );
    body
}

/// What the API server answers: the object as stored. For a status patch that is the object the
/// test registered under `OBJECT`, with the patched status.
fn reply_for(body: &serde_json::Value) -> serde_json::Value {
    let mut reply = OBJECT
        .with(|o| o.borrow().clone())
        .unwrap_or_else(|| body.clone());
    match (body.get("status"), reply.as_object_mut()) {
        (Some(status), Some(obj)) if body.get("kind") == obj.get("kind") => {
            obj.insert("status".into(), status.clone());
            reply
        }
        _ => body.clone(),
    }
}

thread_local! {
    static OBJECT: std::cell::RefCell<Option<serde_json::Value>> = const { std::cell::RefCell::new(None) };
}

/// Registers the object the fake API server holds.
fn stored<T: serde::Serialize>(object: &T) {
    let value = serde_json::to_value(object).expect("json");
    OBJECT.with(|o| *o.borrow_mut() = Some(value));
}

/// Asserts that no request arrives.
async fn expect_silence(handle: &mut Handle) {
    let next = tokio::time::timeout(Duration::from_millis(300), handle.next_request()).await;
    assert!(
        next.is_err() || matches!(next, Ok(None)),
        "unexpected request: {:?}",
        next.ok().flatten().map(|(r, _)| r.uri().clone())
    );
}

const BINDING_STATUS: &str = "/apis/rolegate.dev/v1alpha1/namespaces/default/rolebindings/acme-owner/status?&force=true&fieldManager=rolegate";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events?";

fn binding_in(index: &Index, name: &str) -> Arc<RoleBinding> {
    Arc::new(stored_binding(index, name))
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_binding_gets_its_status_by_server_side_apply_and_no_event() {
    let index = owned_account();
    let binding = binding_in(&index, "acme-owner");
    stored(&*binding);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_binding(binding, ctx));

    let patch = expect(&mut handle, Method::PATCH, BINDING_STATUS, 200).await;
    assert_eq!(patch["apiVersion"], "rolegate.dev/v1alpha1");
    assert_eq!(patch["kind"], "RoleBinding");
    assert!(
        patch.get("spec").is_none(),
        "the controller never writes spec"
    );
    let conditions = patch["status"]["conditions"]
        .as_array()
        .expect("conditions");
    let accepted = conditions
        .iter()
        .find(|c| c["type"] == "Accepted")
        .expect("Accepted");
    assert_eq!(
        (accepted["status"].as_str(), accepted["reason"].as_str()),
        (Some("True"), Some("Accepted"))
    );
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    );

    // Accepted on its first status is the expected outcome: no Event (one per binding would
    // flood the API server when rolegate starts on a full cluster).
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_rejected_binding_that_heals_gets_an_accepted_event() {
    let index = owned_account();
    let mut binding = stored_binding(&index, "acme-owner");
    binding.status = Some(rolegate::api::RoleBindingStatus {
        conditions: vec![rolegate::api::Condition {
            type_: "Accepted".into(),
            status: "False".into(),
            reason: "MemberNotFound".into(),
            message: "[R2] member ann does not exist".into(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            observed_generation: None,
        }],
        ..Default::default()
    });
    stored(&binding);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_binding(Arc::new(binding), ctx));

    expect(&mut handle, Method::PATCH, BINDING_STATUS, 200).await;
    let event = expect(&mut handle, Method::POST, EVENTS, 201).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Normal"), Some("Accepted"))
    );
    assert_eq!(event["regarding"]["name"], "acme-owner");
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_unchanged_status_writes_nothing() {
    let mut index = owned_account();
    let binding = binding_in(&index, "acme-owner");
    let eval = rolegate::engine::evaluate_account(
        &index,
        &acme(),
        rolegate::engine::Timestamp::UNIX_EPOCH,
    );
    let missing = rolegate::engine::rules::reference::account_not_found("acme");
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let current =
        controller::status::binding(eval.bindings.get("acme-owner"), &missing, None, None, &now);
    let mut with_status = (*binding).clone();
    with_status.status = Some(current);
    index.apply(with_status.clone().into());
    let (ctx, mut handle) = context(index);

    controller::reconcile_binding(Arc::new(with_status), ctx)
        .await
        .expect("reconcile succeeds");
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_rejected_binding_gets_the_rule_as_reason_and_a_warning_event() {
    let mut index = owned_account();
    let mut admin = mk_role("project-admin", RoleScope::Project, &["project.manage"]);
    admin.spec.exclusive_groups = vec!["project-access".into()];
    let mut viewer = mk_role("project-viewer", RoleScope::Project, &["project.view"]);
    viewer.spec.exclusive_groups = vec!["project-access".into()];
    index.apply(admin.into());
    index.apply(viewer.into());
    index.apply(
        created_at(
            mk_binding("bob-pv-web", "acme", "bob", "project-viewer", Some("web")),
            1,
        )
        .into(),
    );
    index.apply(
        created_at(
            mk_binding("bob-pa-web", "acme", "bob", "project-admin", Some("web")),
            2,
        )
        .into(),
    );
    let binding = binding_in(&index, "bob-pa-web");
    stored(&*binding);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_binding(binding, ctx));

    let path = BINDING_STATUS.replace("acme-owner", "bob-pa-web");
    let patch = expect(&mut handle, Method::PATCH, &path, 200).await;
    let conditions = patch["status"]["conditions"]
        .as_array()
        .expect("conditions");
    let accepted = conditions
        .iter()
        .find(|c| c["type"] == "Accepted")
        .expect("Accepted");
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "ExclusiveRoleConflict");
    assert!(
        accepted["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("[R5] bob already holds project-viewer"))
    );
    let stalled = conditions
        .iter()
        .find(|c| c["type"] == "Stalled")
        .expect("kstatus Stalled");
    assert_eq!(stalled["status"], "True");

    let event = expect(&mut handle, Method::POST, EVENTS, 201).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("Rejected"))
    );
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
}

#[tokio::test(flavor = "current_thread")]
async fn a_conflict_on_the_status_write_is_an_error_for_the_retry_policy() {
    let index = owned_account();
    let binding = binding_in(&index, "acme-owner");
    stored(&*binding);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_binding(binding, ctx));
    expect(&mut handle, Method::PATCH, BINDING_STATUS, 409).await;
    let result = reconcile.await.expect("joined, no panic");
    assert!(
        matches!(result, Err(controller::Error::Status { .. })),
        "{result:?}"
    );
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn member_permissions_generation_rises_with_an_event_when_access_changes() {
    let mut index = owned_account();
    index.apply(mk_role("support", RoleScope::Account, &["tickets"]).into());
    index.apply(mk_binding("bob-support", "acme", "bob", "support", None).into());
    let mut bob = mk_member("bob", "acme", MemberType::User);
    bob.status = Some(MemberStatus {
        permissions_generation: 3,
        permissions: ScopedNames {
            account: vec!["account.view".to_owned()],
            ..ScopedNames::default()
        },
        ..MemberStatus::default()
    });
    stored(&bob);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_member(Arc::new(bob), ctx));

    let path = "/apis/rolegate.dev/v1alpha1/namespaces/default/members/bob/status?&force=true&fieldManager=rolegate";
    let patch = expect(&mut handle, Method::PATCH, path, 200).await;
    assert_eq!(patch["status"]["permissionsGeneration"], 4);
    assert_eq!(
        patch["status"]["permissions"]["account"],
        serde_json::json!(["tickets"])
    );
    assert!(
        patch["status"]["permissions"].get("projects").is_none(),
        "account-level access is stated once, not under every project: {patch}"
    );
    let event = expect(&mut handle, Method::POST, EVENTS, 201).await;
    assert_eq!(event["reason"], "PermissionsChanged");
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
}

/// Reconciles `acme` of `owned_account`, whose status was `status`: expects its status write
/// (owner alice, 2 members, 1 binding, `OwnerBound=True`); the handle and the reconcile go on.
async fn account_status_written(
    status: Option<AccountStatus>,
) -> (
    Handle,
    tokio::task::JoinHandle<Result<controller::Action, controller::Error>>,
) {
    let index = owned_account();
    let mut account = stored_account(&index, "acme");
    account.status = status;
    let account = Arc::new(account);
    stored(&*account);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_account(account, ctx));
    let path = "/apis/rolegate.dev/v1alpha1/namespaces/default/accounts/acme/status?&force=true&fieldManager=rolegate";
    let patch = expect(&mut handle, Method::PATCH, path, 200).await;
    let status = &patch["status"];
    assert_eq!(
        (
            status["owner"].as_str(),
            status["members"].as_u64(),
            status["bindings"].as_u64()
        ),
        (Some("alice"), Some(2), Some(1))
    );
    let owner_bound = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "OwnerBound").cloned());
    assert_eq!(
        owner_bound.map(|c| c["status"].clone()),
        Some(serde_json::json!("True"))
    );
    (handle, reconcile)
}

#[tokio::test(flavor = "current_thread")]
async fn an_account_reports_its_owner_and_counts_and_its_first_owner_is_no_event() {
    let (mut handle, reconcile) = account_status_written(None).await;
    expect_silence(&mut handle).await;
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
}

#[tokio::test(flavor = "current_thread")]
async fn an_account_whose_owner_changes_announces_it() {
    let before = AccountStatus {
        owner: Some("bob".into()),
        ..AccountStatus::default()
    };
    let (mut handle, reconcile) = account_status_written(Some(before)).await;
    let event = expect(&mut handle, Method::POST, EVENTS, 201).await;
    assert_eq!(event["reason"], "OwnerChanged");
    assert_eq!(event["note"], "alice owns the account (was bob)");
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
}

const TEAM_STATUS: &str = "/apis/rolegate.dev/v1alpha1/namespaces/default/teams/web/status?&force=true&fieldManager=rolegate";

/// `owned_account` with a role, a team `web` listing `members` and a binding naming the team.
fn team_account(members: &[&str]) -> (Index, Team) {
    let mut index = owned_account();
    index.apply(mk_role("developer", RoleScope::Project, &["deploy"]).into());
    index.apply(mk_team_binding("web-dev", "acme", "web", "developer", Some("web")).into());
    let team = mk_team("web", "acme", members);
    index.apply(team.clone().into());
    (index, team)
}

fn find<'a>(conditions: &'a [serde_json::Value], type_: &str) -> Option<&'a serde_json::Value> {
    conditions.iter().find(|c| c["type"] == type_)
}

#[tokio::test(flavor = "current_thread")]
async fn a_team_waiting_for_a_member_is_not_ready_and_reconciling_with_the_rule() {
    let (index, team) = team_account(&["bob", "carol"]);
    stored(&team);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_team(Arc::new(team), ctx));

    let patch = expect(&mut handle, Method::PATCH, TEAM_STATUS, 200).await;
    assert_eq!(
        (patch["apiVersion"].as_str(), patch["kind"].as_str()),
        (Some("rolegate.dev/v1alpha1"), Some("Team"))
    );
    assert!(
        patch.get("spec").is_none(),
        "the controller never writes spec"
    );
    let status = &patch["status"];
    assert_eq!(
        (status["members"].as_u64(), status["bindings"].as_u64()),
        (Some(1), Some(1)),
        "bob resolves, carol does not; one binding names the team"
    );
    let conditions = status["conditions"].as_array().expect("conditions");
    let missing = rolegate::engine::rules::reference::team_member_not_found("web", "carol");
    for type_ in ["Ready", "Reconciling"] {
        let c = find(conditions, type_).unwrap_or_else(|| panic!("{type_} is set"));
        let want = if type_ == "Ready" { "False" } else { "True" };
        assert_eq!(c["status"], want, "{type_}");
        assert_eq!(c["reason"], missing.reason.as_str(), "{type_}");
        assert_eq!(c["message"], missing.message.as_str(), "{type_}");
    }
    assert!(
        find(conditions, "Stalled").is_none(),
        "a missing member may still arrive"
    );

    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
    // A first status is no transition: no Event.
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_team_listing_a_foreign_member_is_stalled_with_r8() {
    let (mut index, team) = team_account(&["bob", "mallory"]);
    index.apply(mk_account("other", &[]).into());
    index.apply(mk_member("mallory", "other", MemberType::User).into());
    stored(&team);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_team(Arc::new(team), ctx));

    let patch = expect(&mut handle, Method::PATCH, TEAM_STATUS, 200).await;
    let conditions = patch["status"]["conditions"]
        .as_array()
        .expect("conditions");
    let ready = find(conditions, "Ready").expect("Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("AccountMismatch"))
    );
    assert!(
        ready["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("[R8]")),
        "{ready}"
    );
    assert_eq!(
        find(conditions, "Stalled").map(|c| &c["status"]),
        Some(&serde_json::json!("True"))
    );
    assert!(find(conditions, "Reconciling").is_none());
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_member_joining_a_bound_team_gets_ready_and_a_granted_event() {
    let (mut index, mut team) = team_account(&["bob", "carol"]);
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    // The status written while carol was missing.
    let before = {
        let eval =
            rolegate::engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::now());
        let missing = rolegate::engine::rules::reference::account_not_found("acme");
        controller::status::team(eval.teams.get("web"), &missing, None, None, &now)
    };
    assert_eq!(before.members, 1);
    team.status = Some(before);
    index.apply(mk_member("carol", "acme", MemberType::User).into());
    stored(&team);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_team(Arc::new(team), ctx));

    let patch = expect(&mut handle, Method::PATCH, TEAM_STATUS, 200).await;
    assert_eq!(patch["status"]["members"], 2);
    let conditions = patch["status"]["conditions"]
        .as_array()
        .expect("conditions");
    assert_eq!(
        find(conditions, "Ready").map(|c| &c["status"]),
        Some(&serde_json::json!("True"))
    );
    assert!(
        find(conditions, "Reconciling").is_none(),
        "Reconciling goes once carol exists"
    );

    let event = expect(&mut handle, Method::POST, EVENTS, 201).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Normal"), Some("Granted"))
    );
    assert_eq!(event["regarding"]["kind"], "Team");
    assert_eq!(event["regarding"]["name"], "web");
    assert!(
        event["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("2 listed members resolve (was 1)")),
        "{event}"
    );
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_unchanged_team_status_writes_nothing() {
    let (index, mut team) = team_account(&["bob", "carol"]);
    let eval =
        rolegate::engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::now());
    let missing = rolegate::engine::rules::reference::account_not_found("acme");
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    team.status = Some(controller::status::team(
        eval.teams.get("web"),
        &missing,
        None,
        None,
        &now,
    ));
    let (ctx, mut handle) = context(index);
    controller::reconcile_team(Arc::new(team), ctx)
        .await
        .expect("reconcile succeeds");
    expect_silence(&mut handle).await;
}

const MEMBER_STATUS: &str = "/apis/rolegate.dev/v1alpha1/namespaces/default/members/bob/status?&force=true&fieldManager=rolegate";

/// `owned_account` with bob bound to an account role `support`, and bob as stored with `status`.
fn bob_with_support(status: Option<MemberStatus>) -> (Index, Member) {
    let mut index = owned_account();
    index.apply(mk_role("support", RoleScope::Account, &["tickets"]).into());
    index.apply(mk_binding("bob-support", "acme", "bob", "support", None).into());
    let mut bob = mk_member("bob", "acme", MemberType::User);
    bob.status = status;
    stored(&bob);
    (index, bob)
}

#[tokio::test(flavor = "current_thread")]
async fn a_members_first_permissions_are_no_event() {
    // As when a sync brings the catalog after the members: they had a status, but no access.
    let (index, bob) = bob_with_support(Some(MemberStatus {
        permissions_generation: 1,
        ..MemberStatus::default()
    }));
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_member(Arc::new(bob), ctx));
    let patch = expect(&mut handle, Method::PATCH, MEMBER_STATUS, 200).await;
    assert_eq!(patch["status"]["permissionsGeneration"], 2);
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_status_too_large_is_reported_once_and_not_retried() {
    let (index, bob) = bob_with_support(None);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_member(Arc::new(bob), ctx));
    // etcd's limit, as the API server passes it on.
    let too_large = "etcdserver: request is too large";
    expect_answered(&mut handle, Method::PATCH, MEMBER_STATUS, 500, too_large).await;
    let patch = expect(&mut handle, Method::PATCH, MEMBER_STATUS, 200).await;
    let status = &patch["status"];
    let conditions = status["conditions"].as_array().expect("conditions");
    let ready = find(conditions, "Ready").expect("Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("StatusTooLarge"))
    );
    assert!(
        ready["message"]
            .as_str()
            .is_some_and(|m| m.contains(too_large)),
        "{ready}"
    );
    assert_eq!(
        find(conditions, "Stalled").expect("Stalled")["status"],
        "True"
    );
    assert!(
        status["permissions"]["account"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "the part that did not fit is left out: {status}"
    );
    let event = expect(&mut handle, Method::POST, EVENTS, 201).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("StatusTooLarge"))
    );
    let action = reconcile
        .await
        .expect("joined")
        .expect("a refusal for good is no error to retry");
    assert_eq!(action, controller::Action::AwaitChange);
    expect_silence(&mut handle).await;

    // The next change tries once more: refused again, already reported, so nothing else.
    let reported: MemberStatus = serde_json::from_value(status.clone()).expect("a member status");
    let (index, bob) = bob_with_support(Some(reported));
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_member(Arc::new(bob), ctx));
    let attempt = expect_answered(&mut handle, Method::PATCH, MEMBER_STATUS, 500, too_large).await;
    assert_eq!(
        attempt["status"]["permissions"]["account"],
        serde_json::json!(["tickets"]),
        "the whole status is tried again"
    );
    tokio::time::timeout(Duration::from_secs(5), reconcile)
        .await
        .expect("no second report: it would equal the first")
        .expect("joined")
        .expect("not retried");
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_transient_failure_is_an_error_for_the_backoff() {
    let (index, bob) = bob_with_support(None);
    let (ctx, mut handle) = context(index);
    let reconcile = tokio::spawn(controller::reconcile_member(Arc::new(bob), ctx));
    expect_answered(
        &mut handle,
        Method::PATCH,
        MEMBER_STATUS,
        500,
        "etcdserver: leader changed",
    )
    .await;
    let result = reconcile.await.expect("joined");
    assert!(
        result.as_ref().is_err_and(|e| e.permanent().is_none()),
        "{result:?}"
    );
    expect_silence(&mut handle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_binding_waiting_for_its_role_is_reported_after_the_grace_with_one_warning() {
    let mut index = owned_account();
    index.apply(mk_binding("acme-late", "acme", "bob", "not-yet", None).into());
    let binding = binding_in(&index, "acme-late");
    stored(&*binding);
    let grace = Duration::from_millis(300);
    let (ctx, mut handle) = context_with_grace(index, grace);
    // The binding arrives, as its watch event says (the namespace is not quiet).
    ctx.shared
        .observe_apply(RoleBinding::clone(&binding).into(), false);
    // Within the grace: nothing is written, and the account waits in the sweep for its
    // namespace to be quiet, rather than a timer for the binding.
    let action = tokio::time::timeout(
        Duration::from_secs(5),
        controller::reconcile_binding(binding.clone(), ctx.clone()),
    )
    .await
    .expect("nothing is written, so nothing waits for the API server")
    .expect("reconcile succeeds");
    assert_eq!(action, controller::Action::AwaitChange);
    assert_eq!(ctx.shared.sweep.len(), (0, 1), "the account is held");
    expect_silence(&mut handle).await;
    // Past it (expect_silence waited 300 ms): the finding is reported, with one Warning.
    let reconcile = tokio::spawn(controller::reconcile_binding(binding, ctx));
    let path = "/apis/rolegate.dev/v1alpha1/namespaces/default/rolebindings/acme-late/status?&force=true&fieldManager=rolegate";
    let patch = expect(&mut handle, Method::PATCH, path, 200).await;
    let conditions = patch["status"]["conditions"]
        .as_array()
        .expect("conditions");
    assert_eq!(
        find(conditions, "Accepted").expect("Accepted")["reason"],
        "RoleNotFound"
    );
    let event = expect(&mut handle, Method::POST, EVENTS, 201).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("Rejected"))
    );
    reconcile
        .await
        .expect("joined")
        .expect("reconcile succeeds");
}
