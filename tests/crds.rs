//! The CRDs under `crds/` are generated from the Rust types: this fails when they drift. Run
//! `cargo run -- crds --dir crds` to regenerate them.

use std::fs;
use std::path::Path;

use kube::CustomResourceExt;
use rolegate::api::{self, Account, Kind, Member, Role, RoleBinding, Team};

#[test]
fn crds_on_disk_match_the_types() {
    // `crds/` for kubectl and `rolegate check` users, the chart's copy for Helm.
    for dir in ["crds", "charts/rolegate/crds"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for (file, yaml) in api::crd_files() {
            let on_disk = fs::read_to_string(path.join(&file)).unwrap_or_default();
            assert!(
                on_disk == yaml,
                "{dir}/{file} is stale: run `cargo run -- crds --dir {dir}`"
            );
        }
        let files = fs::read_dir(&path).map(|d| d.count()).unwrap_or(0);
        assert_eq!(files, 5, "{dir}/ holds exactly the five generated CRDs");
    }
}

#[test]
fn every_kind_has_a_short_name_and_the_rolegate_category() {
    for crd in api::crds() {
        let names = &crd.spec.names;
        let short = names.short_names.clone().unwrap_or_default();
        assert!(
            short.iter().all(|s| s.starts_with("rg")) && !short.is_empty(),
            "{short:?}"
        );
        assert_eq!(
            names.categories.clone().unwrap_or_default(),
            vec!["rolegate".to_owned()]
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some())
        );
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c.name == "Age"))
        );
    }
}

fn value<T: serde::Serialize>(object: &T) -> serde_json::Value {
    serde_json::to_value(object).expect("serializes")
}

fn messages(result: Result<(), kube::core::cel::ValidationErrors>) -> Vec<String> {
    result
        .err()
        .map(|e| e.into_vec().into_iter().map(|e| e.message).collect())
        .unwrap_or_default()
}

fn binding(name: &str, member: &str, project: Option<&str>) -> serde_json::Value {
    let mut spec = serde_json::json!({"account": "acme", "member": member, "role": "r"});
    if let Some(p) = project {
        spec["project"] = p.into();
    }
    serde_json::json!({"apiVersion": api::API_VERSION, "kind": "RoleBinding", "metadata": {"name": name}, "spec": spec})
}

fn cel_update<K: CustomResourceExt + serde::de::DeserializeOwned + serde::Serialize>(
    new: serde_json::Value,
    old: serde_json::Value,
) -> Vec<String> {
    let new: K = serde_json::from_value(new).expect("valid object");
    let old: K = serde_json::from_value(old).expect("valid object");
    messages(kube::core::cel::validate_cel_update(&new, &old))
}

#[test]
fn cel_binding_member_is_immutable_except_on_the_owner_binding() {
    let changed = cel_update::<RoleBinding>(
        binding("bob-x", "carol", None),
        binding("bob-x", "bob", None),
    );
    assert_eq!(changed, vec!["[R11] spec.member is immutable".to_owned()]);
    let transfer = cel_update::<RoleBinding>(
        binding("acme-owner", "carol", None),
        binding("acme-owner", "bob", None),
    );
    assert!(transfer.is_empty(), "{transfer:?}");
    let same = cel_update::<RoleBinding>(
        binding("bob-x", "bob", Some("p")),
        binding("bob-x", "bob", Some("p")),
    );
    assert!(same.is_empty(), "{same:?}");
}

#[test]
fn cel_binding_project_cannot_be_added_removed_or_changed() {
    let added =
        cel_update::<RoleBinding>(binding("b", "bob", Some("p")), binding("b", "bob", None));
    let changed = cel_update::<RoleBinding>(
        binding("b", "bob", Some("q")),
        binding("b", "bob", Some("p")),
    );
    assert_eq!(added, vec!["[R11] spec.project is immutable".to_owned()]);
    assert_eq!(changed, vec!["[R11] spec.project is immutable".to_owned()]);
}

#[test]
fn cel_member_account_and_type_are_immutable() {
    let member = |account: &str, t: &str| {
        serde_json::json!({"apiVersion": api::API_VERSION, "kind": "Member", "metadata": {"name": "m"},
            "spec": {"account": account, "type": t}})
    };
    assert_eq!(
        cel_update::<Member>(member("a", "User"), member("b", "User")),
        vec!["[R11] spec.account is immutable"]
    );
    assert_eq!(
        cel_update::<Member>(member("a", "Service"), member("a", "User")),
        vec!["[R11] spec.type is immutable"]
    );
    assert!(cel_update::<Member>(member("a", "User"), member("a", "User")).is_empty());
}

#[test]
fn cel_locked_role_never_changes_and_role_shape_rules_hold() {
    let role = |spec: serde_json::Value| serde_json::json!({"apiVersion": api::API_VERSION, "kind": "Role", "metadata": {"name": "r"}, "spec": spec});
    let locked =
        role(serde_json::json!({"scope": "Account", "permissions": ["a"], "locked": true}));
    let changed =
        role(serde_json::json!({"scope": "Account", "permissions": ["a", "b"], "locked": true}));
    assert_eq!(
        cel_update::<Role>(changed.clone(), locked.clone()),
        vec!["[R10] the role is locked: its spec never changes"]
    );
    let unlocked = role(serde_json::json!({"scope": "Account", "permissions": ["a"]}));
    assert!(cel_update::<Role>(changed, unlocked).is_empty());

    let owner_project: Role =
        serde_json::from_value(role(serde_json::json!({"scope": "Project", "owner": true})))
            .expect("role");
    assert_eq!(
        messages(kube::core::cel::validate_cel(&owner_project)),
        vec!["[R6] an owner role must have scope Account"]
    );
    let default_owner: Role = serde_json::from_value(role(
        serde_json::json!({"scope": "Account", "owner": true, "default": true}),
    ))
    .expect("role");
    assert_eq!(
        messages(kube::core::cel::validate_cel(&default_owner)),
        vec!["[R14] the owner role cannot be a default role"]
    );
}

#[test]
fn accounts_have_no_transition_rules() {
    let account: Account = serde_json::from_value(serde_json::json!({
        "apiVersion": api::API_VERSION, "kind": "Account", "metadata": {"name": "a"}, "spec": {}
    }))
    .expect("account");
    assert!(kube::core::cel::validate_cel_update(&account, &account).is_ok());
    assert_eq!(value(&account)["spec"]["redundantBindings"], "Warn");
}

fn team_binding(name: &str, team: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": api::API_VERSION, "kind": "RoleBinding", "metadata": {"name": name},
        "spec": {"account": "acme", "team": team, "role": "r"}})
}

fn rule_of(result: Result<(), rolegate::engine::Violation>) -> Option<String> {
    result.err().map(|v| v.rule.id().to_owned())
}

#[test]
fn cel_r17_a_binding_names_exactly_one_subject() {
    use rolegate::engine::rules::schema::check_json;
    let both = serde_json::json!({"apiVersion": api::API_VERSION, "kind": "RoleBinding", "metadata": {"name": "x"},
        "spec": {"account": "acme", "member": "bob", "team": "web", "role": "r"}});
    let neither = serde_json::json!({"apiVersion": api::API_VERSION, "kind": "RoleBinding", "metadata": {"name": "x"},
        "spec": {"account": "acme", "role": "r"}});
    assert_eq!(
        rule_of(check_json(Kind::RoleBinding, &both, None)).as_deref(),
        Some("R17")
    );
    assert_eq!(
        rule_of(check_json(Kind::RoleBinding, &neither, None)).as_deref(),
        Some("R17")
    );
    assert_eq!(
        rule_of(check_json(
            Kind::RoleBinding,
            &team_binding("x", "web"),
            None
        )),
        None
    );
    assert_eq!(
        rule_of(check_json(
            Kind::RoleBinding,
            &binding("x", "bob", None),
            None
        )),
        None
    );
}

#[test]
fn cel_team_binding_subject_and_team_account_are_immutable() {
    let moved = cel_update::<RoleBinding>(team_binding("x", "mail"), team_binding("x", "web"));
    assert_eq!(moved, vec!["[R11] spec.team is immutable".to_owned()]);
    let to_member = cel_update::<RoleBinding>(binding("x", "bob", None), team_binding("x", "web"));
    assert!(
        to_member.contains(&"[R11] spec.member is immutable".to_owned()),
        "{to_member:?}"
    );
    assert!(
        to_member.contains(&"[R11] spec.team is immutable".to_owned()),
        "{to_member:?}"
    );
    let team = |account: &str, members: &[&str]| {
        serde_json::json!({"apiVersion": api::API_VERSION, "kind": "Team", "metadata": {"name": "web"},
            "spec": {"account": account, "members": members}})
    };
    let moved = cel_update::<Team>(team("globex", &["bob"]), team("acme", &["bob"]));
    assert_eq!(moved, vec!["[R11] spec.account is immutable".to_owned()]);
    let grown = cel_update::<Team>(team("acme", &["bob", "carol"]), team("acme", &["bob"]));
    assert!(grown.is_empty(), "{grown:?}");
}
