//! One verdict everywhere: the webhook's admission, the controller's evaluation and `check --base`
//! agree, and updates are ratcheted. Each case runs through the engine and through the real
//! `rolegate check` binary.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rolegate::api::*;
use rolegate::engine::{self, Decision, Index, Operation, Reason, Review};
use support::*;

fn admit(
    index: &Index,
    operation: Operation,
    new: Option<&Object>,
    old: Option<&Object>,
) -> Decision {
    engine::admit(
        index,
        &Review {
            operation,
            object: new,
            old_object: old,
            requester: None,
        },
        rolegate::engine::Timestamp::UNIX_EPOCH,
    )
}

fn update(index: &Index, old: impl Into<Object>, new: impl Into<Object>) -> Decision {
    let (old, new) = (old.into(), new.into());
    admit(index, Operation::Update, Some(&new), Some(&old))
}

fn labelled(mut binding: RoleBinding) -> RoleBinding {
    binding.metadata.labels = Some(
        [(
            "argocd.argoproj.io/instance".to_owned(),
            "tenants".to_owned(),
        )]
        .into_iter()
        .collect(),
    );
    binding
}

/// bob holds project-viewer on web (older, wins) and project-admin on web (newer, loses): both
/// got in while the webhook was down.
fn conflicted(policy: RedundantPolicy) -> (Index, RoleBinding, RoleBinding) {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.redundant_bindings = policy;
    index.apply(account.into());
    let mut admin = mk_role("project-admin", RoleScope::Project, &["project.manage"]);
    admin.spec.exclusive_groups = vec!["project-access".into()];
    admin.spec.includes = vec!["project-viewer".into()];
    let mut viewer = mk_role("project-viewer", RoleScope::Project, &["project.view"]);
    viewer.spec.exclusive_groups = vec!["project-access".into()];
    index.apply(admin.into());
    index.apply(viewer.into());
    let winner = created_at(
        mk_binding("bob-pv-web", "acme", "bob", "project-viewer", Some("web")),
        1,
    );
    let loser = created_at(
        mk_binding("bob-pa-web", "acme", "bob", "project-admin", Some("web")),
        2,
    );
    index.apply(winner.clone().into());
    index.apply(loser.clone().into());
    (index, winner, loser)
}

fn allowed_quietly(decision: &Decision) -> bool {
    matches!(decision, Decision::Allow { warnings } if warnings.is_empty())
}

#[test]
fn a_label_on_the_winning_binding_is_allowed() {
    let (index, winner, loser) = conflicted(RedundantPolicy::Warn);
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert!(eval.bindings["bob-pv-web"].accepted.is_ok());
    assert_eq!(
        eval.bindings["bob-pa-web"]
            .accepted
            .as_ref()
            .map_err(|v| v.reason),
        Err(Reason::ExclusiveRoleConflict),
        "the newer binding lost"
    );
    let decision = update(&index, winner.clone(), labelled(winner));
    assert!(allowed_quietly(&decision), "{decision:?}");
    // The loser grants nothing, so no rule counts it as held: a fresh binding the loser would
    // make redundant is no conflict either.
    let other = mk_binding("bob-pv-shop", "acme", "bob", "project-viewer", Some("shop"));
    let other: Object = other.into();
    assert!(admit(&index, Operation::Create, Some(&other), None).is_allowed());
    drop(loser);
}

#[test]
fn a_label_on_the_losing_binding_is_allowed() {
    let (index, _, loser) = conflicted(RedundantPolicy::Warn);
    let decision = update(&index, loser.clone(), labelled(loser));
    assert!(allowed_quietly(&decision), "{decision:?}");
}

#[test]
fn a_label_on_a_redundant_binding_under_deny_is_allowed_but_creating_one_is_denied() {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.redundant_bindings = RedundantPolicy::Deny;
    index.apply(account.into());
    let mut admin = mk_role("project-admin", RoleScope::Project, &["project.manage"]);
    admin.spec.includes = vec!["project-viewer".into()];
    index.apply(admin.into());
    index.apply(mk_role("project-viewer", RoleScope::Project, &["project.view"]).into());
    index.apply(
        created_at(
            mk_binding("bob-pa", "acme", "bob", "project-admin", Some("web")),
            1,
        )
        .into(),
    );
    let redundant = created_at(
        mk_binding("bob-pv", "acme", "bob", "project-viewer", Some("web")),
        2,
    );
    index.apply(redundant.clone().into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert!(eval.bindings["bob-pv"].redundant.is_some());
    assert!(allowed_quietly(&update(
        &index,
        redundant.clone(),
        labelled(redundant)
    )));
    let again: Object = mk_binding("bob-pv-2", "acme", "bob", "project-viewer", Some("web")).into();
    match admit(&index, Operation::Create, Some(&again), None) {
        Decision::Deny(v) => assert_eq!(v.reason, Reason::RedundantBinding),
        other => panic!("a new redundant binding under Deny must be denied: {other:?}"),
    }
}

#[test]
fn removing_a_finalizer_from_a_losing_binding_being_deleted_is_allowed() {
    let (mut index, _, loser) = conflicted(RedundantPolicy::Warn);
    let mut deleting = loser;
    deleting.metadata.finalizers = Some(vec!["foregroundDeletion".into()]);
    deleting.metadata.deletion_timestamp = Timestamp::from_second(50).ok().map(Time);
    index.apply(deleting.clone().into());
    let mut finished = deleting.clone();
    finished.metadata.finalizers = None;
    let decision = update(&index, deleting, finished);
    assert!(allowed_quietly(&decision), "{decision:?}");
}

#[test]
fn an_update_that_still_breaks_a_rule_the_same_way_only_warns() {
    let mut index = owned_account();
    let mut a = mk_role("a", RoleScope::Account, &["a"]);
    a.spec.includes = vec!["b".into()];
    let mut b = mk_role("b", RoleScope::Account, &["b"]);
    b.spec.includes = vec!["a".into()];
    index.apply(a.clone().into());
    index.apply(b.into());
    let mut more = a.clone();
    more.spec.permissions.push("a.more".into());
    match update(&index, a.clone(), more) {
        Decision::Allow { warnings } => {
            assert_eq!(
                warnings.iter().map(|w| w.reason).collect::<Vec<_>>(),
                vec![Reason::InvalidIncludes]
            );
        }
        other => panic!("the cycle was there before: {other:?}"),
    }
    // Making a sound role cyclic is worse, and denied.
    let sound = mk_role("a", RoleScope::Account, &["a"]);
    assert!(!update(&index, sound, a).is_allowed());
}

/// The managed WordPress shape: company-owner includes company-admin, the successor role.
fn wordpress() -> Index {
    let mut index = Index::new();
    let mut account = mk_account("wpco", &["blog"]);
    account.spec.ownership.successor_role = Some("company-admin".into());
    index.apply(account.into());
    let mut owner = mk_owner_role("company-owner");
    owner.spec.includes = vec!["company-admin".into()];
    index.apply(owner.into());
    let mut admin = mk_role("company-admin", RoleScope::Account, &["company.admin"]);
    admin.spec.includes = vec!["company-developer".into()];
    index.apply(admin.into());
    index.apply(mk_role("company-developer", RoleScope::Account, &["company.dev"]).into());
    for m in ["kim", "dev", "ada"] {
        index.apply(mk_member(m, "wpco", MemberType::User).into());
    }
    index.apply(
        created_at(
            mk_binding("wpco-owner", "wpco", "kim", "company-owner", None),
            1,
        )
        .into(),
    );
    index.apply(
        created_at(
            mk_binding("dev-developer", "wpco", "dev", "company-developer", None),
            1,
        )
        .into(),
    );
    index.apply(
        created_at(
            mk_binding("ada-admin", "wpco", "ada", "company-admin", None),
            1,
        )
        .into(),
    );
    index
}

#[test]
fn a_transfer_to_a_member_without_the_successor_role_is_denied() {
    let index = wordpress();
    let old = created_at(
        mk_binding("wpco-owner", "wpco", "kim", "company-owner", None),
        1,
    );
    let mut to_dev = old.clone();
    to_dev.spec.member = Some("dev".into());
    match update(&index, old.clone(), to_dev) {
        Decision::Deny(v) => assert_eq!(v.reason, Reason::OwnerTransferDenied, "{v}"),
        other => panic!("dev holds company-admin only through the moved binding: {other:?}"),
    }
    let mut to_ada = old.clone();
    to_ada.spec.member = Some("ada".into());
    assert!(update(&index, old, to_ada).is_allowed());
}

// --- the same cases through the real `check` binary ---------------------------------------------

const WORDPRESS: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Account
metadata: {name: wpco}
spec:
  ownership: {transfer: Allowed, successorRole: company-admin}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: company-owner}
spec: {scope: Account, owner: true, permissions: [account.close], includes: [company-admin]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: company-admin}
spec: {scope: Account, permissions: [company.admin], includes: [company-developer]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: company-developer}
spec: {scope: Account, permissions: [company.dev]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: kim}
spec: {account: wpco}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: dev}
spec: {account: wpco}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: dev-developer}
spec: {account: wpco, member: dev, role: company-developer}
";

const OWNER_KIM: &str = "
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: wpco-owner}
spec: {account: wpco, member: kim, role: company-owner}
";

const OWNER_DEV: &str = "
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: wpco-owner}
spec: {account: wpco, member: dev, role: company-owner}
";

const DEV_ADMIN: &str = "
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: dev-admin}
spec: {account: wpco, member: dev, role: company-admin}
";

fn tree(test: &str, side: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("verdict")
        .join(test)
        .join(side);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("tenant.yaml"), text).expect("write");
    dir
}

/// Runs `rolegate check head --base base --output json`: the exit code and the diagnostics.
fn check(test: &str, base: &str, head: &str) -> (i32, Vec<serde_json::Value>) {
    let (base, head) = (tree(test, "base", base), tree(test, "head", head));
    let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["check", "--output", "json", "--base"])
        .arg(&base)
        .arg(&head)
        .output()
        .expect("binary runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let diagnostics = report["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (out.status.code().unwrap_or(-1), diagnostics)
}

fn rules_on(diagnostics: &[serde_json::Value], name: &str) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|d| d["name"] == name)
        .map(|d| d["rule"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn check_base_denies_a_transfer_through_the_moved_owner_binding() {
    let base = format!("{WORDPRESS}{OWNER_KIM}");
    let head = format!("{WORDPRESS}{OWNER_DEV}");
    let (code, diagnostics) = check("transfer-denied", &base, &head);
    assert_eq!(code, 1, "{diagnostics:#?}");
    assert_eq!(
        rules_on(&diagnostics, "wpco-owner"),
        vec!["R4"],
        "{diagnostics:#?}"
    );
}

#[test]
fn check_base_passes_a_transfer_whose_successor_binding_the_pull_request_creates() {
    let base = format!("{WORDPRESS}{OWNER_KIM}");
    let head = format!("{WORDPRESS}{OWNER_DEV}{DEV_ADMIN}");
    let (code, diagnostics) = check("transfer-allowed", &base, &head);
    let errors: Vec<_> = diagnostics
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!((code, errors.len()), (0, 0), "{diagnostics:#?}");
}

const CONFLICT: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Account
metadata: {name: acme}
spec: {projects: [{name: web}]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: owner}
spec: {scope: Account, owner: true, permissions: [account.own]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: project-admin}
spec: {scope: Project, permissions: [project.manage], exclusiveGroups: [project-access]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: project-viewer}
spec: {scope: Project, permissions: [project.view], exclusiveGroups: [project-access]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: bob}
spec: {account: acme}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: acme-owner}
spec: {account: acme, member: bob, role: owner}
";

fn exclusive_pair(labels: &str) -> String {
    format!(
        "{CONFLICT}---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {{name: bob-pa-web, creationTimestamp: '2026-01-01T00:00:02Z'{labels}}}
spec: {{account: acme, member: bob, role: project-admin, project: web}}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {{name: bob-pv-web, creationTimestamp: '2026-01-01T00:00:01Z'{labels}}}
spec: {{account: acme, member: bob, role: project-viewer, project: web}}
"
    )
}

#[test]
fn check_base_does_not_deny_labels_on_conflicting_bindings() {
    let base = exclusive_pair("");
    let head = exclusive_pair(", labels: {app.kubernetes.io/managed-by: argocd}");
    let (_, diagnostics) = check("labels", &base, &head);
    // The desired state still holds the conflict (the loser is reported, as the controller does),
    // and labelling either binding adds nothing.
    assert_eq!(
        rules_on(&diagnostics, "bob-pa-web"),
        vec!["R5"],
        "{diagnostics:#?}"
    );
    assert_eq!(
        rules_on(&diagnostics, "bob-pv-web"),
        Vec::<String>::new(),
        "{diagnostics:#?}"
    );
}
