//! One passing and one failing case per rule, through the engine's public entry points:
//! `evaluate_account` for what the controller and `check` see, `admit` for what the webhook sees.

mod support;

use rolegate::api::*;
use rolegate::engine::{
    self, Decision, Index, Operation, Reason, Requester, Review, RuleId, Violation,
};
use support::*;

fn accepted(index: &Index, binding: &str) -> Result<(), Violation> {
    let eval = engine::evaluate_account(index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    eval.bindings
        .get(binding)
        .expect("binding is evaluated")
        .accepted
        .clone()
}

fn rejected_by(index: &Index, binding: &str) -> Option<Reason> {
    accepted(index, binding).err().map(|v| v.reason)
}

fn create(index: &Index, object: impl Into<Object>) -> Decision {
    let object = object.into();
    engine::admit(
        index,
        &Review {
            operation: Operation::Create,
            object: Some(&object),
            old_object: None,
            requester: None,
        },
        rolegate::engine::Timestamp::UNIX_EPOCH,
    )
}

fn update(index: &Index, old: impl Into<Object>, new: impl Into<Object>) -> Decision {
    let (old, new) = (old.into(), new.into());
    engine::admit(
        index,
        &Review {
            operation: Operation::Update,
            object: Some(&new),
            old_object: Some(&old),
            requester: None,
        },
        rolegate::engine::Timestamp::UNIX_EPOCH,
    )
}

fn delete(index: &Index, old: impl Into<Object>) -> Decision {
    let old = old.into();
    engine::admit(
        index,
        &Review {
            operation: Operation::Delete,
            object: None,
            old_object: Some(&old),
            requester: None,
        },
        rolegate::engine::Timestamp::UNIX_EPOCH,
    )
}

fn denied_by(decision: &Decision) -> Option<Reason> {
    match decision {
        Decision::Deny(v) => Some(v.reason),
        Decision::Allow { .. } => None,
    }
}

fn warned_by(decision: &Decision) -> Vec<Reason> {
    match decision {
        Decision::Allow { warnings } => warnings.iter().map(|w| w.reason).collect(),
        Decision::Deny(_) => Vec::new(),
    }
}

fn project_roles(index: &mut Index) {
    let mut admin = mk_role("project-admin", RoleScope::Project, &["project.manage"]);
    admin.spec.includes = vec!["project-viewer".into()];
    admin.spec.exclusive_groups = vec!["project-access".into()];
    let mut viewer = mk_role("project-viewer", RoleScope::Project, &["project.view"]);
    viewer.spec.exclusive_groups = vec!["project-access".into()];
    index.apply(admin.into());
    index.apply(viewer.into());
}

// R1 owner-unique

#[test]
fn r1_owner_binding_named_after_the_account_is_accepted() {
    let index = owned_account();
    assert_eq!(accepted(&index, "acme-owner"), Ok(()));
    assert_eq!(
        engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH)
            .owner
            .as_deref(),
        Some("alice")
    );
}

#[test]
fn r1_second_owner_binding_is_rejected_and_denied() {
    let mut index = owned_account();
    let second = mk_binding("bob-owner", "acme", "bob", "owner", None);
    assert_eq!(
        denied_by(&create(&index, second.clone())),
        Some(Reason::OwnerNotUnique)
    );
    index.apply(second.into());
    assert_eq!(
        rejected_by(&index, "bob-owner"),
        Some(Reason::OwnerNotUnique)
    );
    assert_eq!(
        engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH)
            .owner
            .as_deref(),
        Some("alice")
    );
}

#[test]
fn r1_owner_name_cannot_bind_another_role() {
    let mut index = Index::new();
    index.apply(mk_account("acme", &[]).into());
    index.apply(mk_member("alice", "acme", MemberType::User).into());
    index.apply(mk_role("viewer", RoleScope::Account, &["view"]).into());
    let squat = mk_binding("acme-owner", "acme", "alice", "viewer", None);
    let Decision::Deny(v) = create(&index, squat) else {
        panic!("a non-owner role named acme-owner must be denied")
    };
    assert_eq!(v.reason, Reason::OwnerNotUnique);
    assert!(
        v.message
            .starts_with("[R1] RoleBinding acme-owner is reserved"),
        "{}",
        v.message
    );
}

// R2 owner-required

#[test]
fn r2_account_with_owner_has_no_problem() {
    assert!(
        engine::evaluate_account(
            &owned_account(),
            &acme(),
            rolegate::engine::Timestamp::UNIX_EPOCH
        )
        .problems
        .is_empty()
    );
}

#[test]
fn r2_account_without_owner_is_reported() {
    let mut index = owned_account();
    index.delete(Kind::RoleBinding, NS, "acme-owner");
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert_eq!(eval.owner, None);
    assert_eq!(
        eval.problems.iter().map(|p| p.reason).collect::<Vec<_>>(),
        vec![Reason::OwnerMissing]
    );
    assert_eq!(eval.problems[0].reason, "OwnerMissing");
}

// R3 owner-kept

#[test]
fn r3_owner_binding_cannot_be_deleted_while_account_exists() {
    let index = owned_account();
    let owner = stored_binding(&index, "acme-owner");
    assert_eq!(
        denied_by(&delete(&index, owner.clone())),
        Some(Reason::OwnerProtected)
    );

    let mut gone = owned_account();
    gone.delete(Kind::Account, NS, "acme");
    assert_eq!(
        denied_by(&delete(&gone, owner)),
        None,
        "an account being removed releases its owner"
    );
}

#[test]
fn r3_owner_member_cannot_be_deleted_but_others_can() {
    let index = owned_account();
    let alice = mk_member("alice", "acme", MemberType::User);
    let bob = mk_member("bob", "acme", MemberType::User);
    assert_eq!(
        denied_by(&delete(&index, alice)),
        Some(Reason::OwnerProtected)
    );
    assert_eq!(denied_by(&delete(&index, bob)), None);
}

#[test]
fn r3_owner_role_cannot_exclude_the_owner() {
    let index = owned_account();
    let old = mk_owner_role("owner");
    let mut services_only = old.clone();
    services_only.spec.member_types = vec![MemberType::Service];
    assert_eq!(
        denied_by(&update(&index, old.clone(), services_only)),
        Some(Reason::OwnerProtected)
    );
    assert_eq!(
        denied_by(&delete(&index, old.clone())),
        Some(Reason::OwnerProtected)
    );
    let mut renamed = old.clone();
    renamed.spec.display_name = Some("Owner".into());
    assert_eq!(denied_by(&update(&index, old, renamed)), None);
}

// R4 owner-transfer

fn transfer(index: &Index) -> Decision {
    let old = mk_binding("acme-owner", "acme", "alice", "owner", None);
    let new = mk_binding("acme-owner", "acme", "bob", "owner", None);
    update(index, old, new)
}

#[test]
fn r4_transfer_allowed_by_default() {
    assert_eq!(denied_by(&transfer(&owned_account())), None);
}

#[test]
fn r4_transfer_forbidden_by_account() {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.ownership.transfer = Transfer::Forbidden;
    index.apply(account.into());
    assert_eq!(
        denied_by(&transfer(&index)),
        Some(Reason::OwnerTransferDenied)
    );
}

#[test]
fn r4_successor_must_hold_the_successor_role() {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.ownership.successor_role = Some("company-admin".into());
    index.apply(account.into());
    index.apply(mk_role("company-admin", RoleScope::Account, &["company.admin"]).into());
    assert_eq!(
        denied_by(&transfer(&index)),
        Some(Reason::OwnerTransferDenied)
    );
    index.apply(mk_binding("bob-admin", "acme", "bob", "company-admin", None).into());
    assert_eq!(denied_by(&transfer(&index)), None);
}

// R5 exclusive

#[test]
fn r5_exclusive_roles_on_different_projects_are_fine() {
    let mut index = owned_account();
    project_roles(&mut index);
    index.apply(mk_binding("bob-pa-shop", "acme", "bob", "project-admin", Some("shop")).into());
    index.apply(mk_binding("bob-pv-web", "acme", "bob", "project-viewer", Some("web")).into());
    assert_eq!(accepted(&index, "bob-pa-shop"), Ok(()));
    assert_eq!(accepted(&index, "bob-pv-web"), Ok(()));
}

#[test]
fn r5_exclusive_roles_on_one_project_conflict_and_the_older_wins() {
    let mut index = owned_account();
    project_roles(&mut index);
    index.apply(
        created_at(
            mk_binding("z-viewer", "acme", "bob", "project-viewer", Some("web")),
            10,
        )
        .into(),
    );
    index.apply(
        created_at(
            mk_binding("a-admin", "acme", "bob", "project-admin", Some("web")),
            20,
        )
        .into(),
    );
    assert_eq!(
        accepted(&index, "z-viewer"),
        Ok(()),
        "older binding wins although its name sorts later"
    );
    let v = accepted(&index, "a-admin").expect_err("newer binding loses");
    assert_eq!(v.reason, "ExclusiveRoleConflict");
    assert_eq!(
        v.message,
        "[R5] bob already holds project-viewer on project web through binding z-viewer; project-admin and project-viewer are exclusive (group project-access)"
    );
}

#[test]
fn r5_admission_denies_the_second_exclusive_role() {
    let mut index = owned_account();
    project_roles(&mut index);
    index.apply(mk_binding("bob-pv-web", "acme", "bob", "project-viewer", Some("web")).into());
    let second = mk_binding("bob-pa-web", "acme", "bob", "project-admin", Some("web"));
    assert_eq!(
        denied_by(&create(&index, second)),
        Some(Reason::ExclusiveRoleConflict)
    );
}

#[test]
fn r5_account_level_binding_counts_on_every_project_but_includes_do_not() {
    let mut index = owned_account();
    let mut web = mk_role("hosting-web", RoleScope::Project, &["web"]);
    web.spec.exclusive_groups = vec!["hosting".into()];
    let mut mail = mk_role("hosting-mail", RoleScope::Project, &["mail"]);
    mail.spec.exclusive_groups = vec!["hosting".into()];
    let mut all = mk_role("customer-web", RoleScope::Account, &["web.all"]);
    all.spec.exclusive_groups = vec!["hosting".into()];
    let mut admin = mk_role("hosting-admin", RoleScope::Project, &["admin"]);
    admin.spec.includes = vec!["hosting-web".into(), "hosting-mail".into()];
    for r in [web, mail, all, admin] {
        index.apply(r.into());
    }
    index.apply(mk_binding("bob-admin-web", "acme", "bob", "hosting-admin", Some("web")).into());
    index.apply(mk_binding("bob-web-web", "acme", "bob", "hosting-web", Some("web")).into());
    assert_eq!(
        accepted(&index, "bob-web-web"),
        Ok(()),
        "admin includes web, which is no conflict"
    );
    let account_wide = mk_binding("bob-customer-web", "acme", "bob", "customer-web", None);
    assert_eq!(
        denied_by(&create(&index, account_wide)),
        Some(Reason::ExclusiveRoleConflict)
    );
}

// R6 scope

#[test]
fn r6_project_role_with_project_is_fine() {
    let mut index = owned_account();
    project_roles(&mut index);
    index.apply(mk_binding("b", "acme", "bob", "project-viewer", Some("shop")).into());
    assert_eq!(accepted(&index, "b"), Ok(()));
}

#[test]
fn r6_project_role_without_project_and_account_role_with_one() {
    let mut index = owned_account();
    project_roles(&mut index);
    index.apply(mk_role("billing", RoleScope::Account, &["billing"]).into());
    index.apply(mk_binding("b1", "acme", "bob", "project-viewer", None).into());
    index.apply(mk_binding("b2", "acme", "bob", "billing", Some("shop")).into());
    assert_eq!(rejected_by(&index, "b1"), Some(Reason::ScopeMismatch));
    assert_eq!(rejected_by(&index, "b2"), Some(Reason::ScopeMismatch));
    assert_eq!(
        denied_by(&create(
            &index,
            mk_binding("b3", "acme", "bob", "billing", Some("web"))
        )),
        Some(Reason::ScopeMismatch)
    );
}

#[test]
fn r6_owner_and_default_roles_must_be_account_roles() {
    let index = Index::new();
    let mut owner = mk_owner_role("owner");
    owner.spec.scope = RoleScope::Project;
    assert_eq!(
        denied_by(&create(&index, owner)),
        Some(Reason::ScopeMismatch)
    );
    let mut default = mk_role("dev", RoleScope::Project, &["dev"]);
    default.spec.default = true;
    assert_eq!(
        denied_by(&create(&index, default)),
        Some(Reason::InvalidDefaultRole)
    );
}

// R7 member-type

#[test]
fn r7_member_type_must_be_allowed() {
    let mut index = owned_account();
    index.apply(mk_member("news", "acme", MemberType::Subscriber).into());
    index.apply(mk_role("billing", RoleScope::Account, &["billing"]).into());
    let mut notices = mk_role("notices", RoleScope::Account, &["notices.receive"]);
    notices.spec.member_types = vec![MemberType::Subscriber];
    index.apply(notices.into());
    index.apply(mk_binding("news-notices", "acme", "news", "notices", None).into());
    index.apply(mk_binding("news-billing", "acme", "news", "billing", None).into());
    assert_eq!(accepted(&index, "news-notices"), Ok(()));
    assert_eq!(
        rejected_by(&index, "news-billing"),
        Some(Reason::MemberTypeNotAllowed)
    );
    assert_eq!(
        accepted(&index, "news-billing").unwrap_err().reason,
        "MemberTypeNotAllowed"
    );
}

// R8 same-account

#[test]
fn r8_member_and_custom_role_of_another_account() {
    let mut index = owned_account();
    index.apply(mk_account("other", &[]).into());
    index.apply(mk_member("eve", "other", MemberType::User).into());
    let mut private = mk_role("other-special", RoleScope::Account, &["special"]);
    private.spec.account = Some("other".into());
    index.apply(private.into());
    let mut mine = mk_role("acme-special", RoleScope::Account, &["special"]);
    mine.spec.account = Some("acme".into());
    index.apply(mine.into());
    index.apply(mk_binding("eve-in-acme", "acme", "eve", "acme-special", None).into());
    index.apply(mk_binding("bob-other-role", "acme", "bob", "other-special", None).into());
    index.apply(mk_binding("bob-own-role", "acme", "bob", "acme-special", None).into());
    assert_eq!(
        rejected_by(&index, "eve-in-acme"),
        Some(Reason::AccountMismatch)
    );
    assert_eq!(
        rejected_by(&index, "bob-other-role"),
        Some(Reason::AccountMismatch)
    );
    assert_eq!(accepted(&index, "bob-own-role"), Ok(()));
}

// R9 redundant

#[test]
fn r9_included_role_on_same_scope_is_redundant_and_only_warns() {
    let mut index = owned_account();
    project_roles(&mut index);
    index.apply(mk_binding("bob-pa", "acme", "bob", "project-admin", Some("shop")).into());
    let mut support = mk_role("support", RoleScope::Account, &["tickets"]);
    support.spec.exclusive_groups.clear();
    index.apply(support.into());
    index.apply(mk_binding("bob-support", "acme", "bob", "support", None).into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert!(eval.bindings["bob-pa"].redundant.is_none());
    assert!(eval.bindings["bob-support"].redundant.is_none());

    let mut superset = mk_role(
        "support-plus",
        RoleScope::Account,
        &["tickets", "tickets.close"],
    );
    superset.spec.member_types = vec![MemberType::User];
    index.apply(superset.into());
    let more = mk_binding("bob-support-plus", "acme", "bob", "support-plus", None);
    index.apply(more.into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    let redundant = eval.bindings["bob-support"]
        .redundant
        .as_ref()
        .expect("support adds nothing to support-plus");
    assert_eq!(redundant.reason, Reason::RedundantBinding);
    assert_eq!(
        eval.bindings["bob-support"].accepted,
        Ok(()),
        "redundant bindings stay accepted"
    );
    let again = mk_binding("bob-support-2", "acme", "bob", "support", None);
    assert_eq!(
        warned_by(&create(&index, again)),
        vec![Reason::RedundantBinding]
    );
}

#[test]
fn r9_account_policy_deny_turns_the_warning_into_a_denial() {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.redundant_bindings = RedundantPolicy::Deny;
    index.apply(account.into());
    index.apply(mk_role("admin", RoleScope::Account, &["a", "b"]).into());
    index.apply(mk_role("viewer", RoleScope::Project, &["a"]).into());
    index.apply(mk_binding("bob-admin", "acme", "bob", "admin", None).into());
    let implied = mk_binding("bob-viewer-shop", "acme", "bob", "viewer", Some("shop"));
    assert_eq!(
        denied_by(&create(&index, implied)),
        Some(Reason::RedundantBinding),
        "account-level access covers every project"
    );
}

// R10 locked

#[test]
fn r10_locked_role_cannot_change_or_be_deleted_while_bound() {
    let mut index = owned_account();
    let mut holder = mk_role("holder", RoleScope::Account, &["everything"]);
    holder.spec.locked = true;
    index.apply(holder.clone().into());
    let mut changed = holder.clone();
    changed.spec.permissions.push("more".into());
    let Decision::Deny(v) = update(&index, holder.clone(), changed) else {
        panic!("locked role changed")
    };
    assert_eq!(
        (v.reason, v.message.as_str()),
        (
            Reason::RoleLocked,
            "[R10] the role is locked: its spec never changes"
        )
    );
    assert_eq!(
        denied_by(&delete(&index, holder.clone())),
        None,
        "an unbound locked role can go"
    );
    index.apply(mk_binding("bob-holder", "acme", "bob", "holder", None).into());
    assert_eq!(denied_by(&delete(&index, holder)), Some(Reason::RoleLocked));
}

// R11 immutable

#[test]
fn r11_immutable_fields_and_the_owner_exemption() {
    let index = owned_account();
    let bob = mk_member("bob", "acme", MemberType::User);
    let mut service = bob.clone();
    service.spec.member_type = MemberType::Service;
    let Decision::Deny(v) = update(&index, bob.clone(), service) else {
        panic!("type changed")
    };
    assert_eq!(v.message, "[R11] spec.type is immutable");
    let mut renamed = bob.clone();
    renamed.spec.display_name = Some("Bob".into());
    assert!(update(&index, bob, renamed).is_allowed());

    let b = mk_binding("bob-x", "acme", "bob", "owner", None);
    let moved = mk_binding("bob-x", "acme", "alice", "owner", None);
    assert_eq!(
        denied_by(&update(&index, b.clone(), moved)),
        Some(Reason::FieldImmutable)
    );
    let mut projected = b.clone();
    projected.spec.project = Some("shop".into());
    assert_eq!(
        denied_by(&update(&index, b, projected)),
        Some(Reason::FieldImmutable)
    );
    assert_eq!(
        denied_by(&transfer(&index)),
        None,
        "the owner binding may change member"
    );
}

/// Behind the API server the CRD's CEL rules have run before the webhook is called, so the
/// webhook's decision leaves them out; offline (`check`) the decision runs them itself.
#[test]
fn r11_is_left_to_the_api_server_only_when_it_enforces_the_schema() {
    let index = owned_account();
    let b = mk_binding("bob-x", "acme", "bob", "support", None);
    let mut moved = b.clone();
    moved.spec.role = "owner".into();
    let (old, new) = (Object::from(b), Object::from(moved));
    let review = Review {
        operation: Operation::Update,
        object: Some(&new),
        old_object: Some(&old),
        requester: None,
    };
    let at = rolegate::engine::Timestamp::UNIX_EPOCH;
    let offline = engine::admit_with(&index, &review, at, engine::SchemaRules::Evaluate);
    assert_eq!(offline, engine::admit(&index, &review, at));
    let Decision::Deny(v) = offline else {
        panic!("spec.role changed offline")
    };
    assert_eq!(v.message, "[R11] spec.role is immutable");
    let behind = engine::admit_with(&index, &review, at, engine::SchemaRules::Enforced);
    assert_ne!(
        denied_by(&behind),
        Some(Reason::FieldImmutable),
        "the API server refused it before the webhook saw it"
    );
}

// R12 includes

#[test]
fn r12_includes_resolve() {
    let mut index = owned_account();
    project_roles(&mut index);
    let eval = engine::evaluate_role(&index, NS, "project-admin").expect("role exists");
    assert_eq!(eval.problem, None);
    assert_eq!(
        eval.effective_permissions,
        vec!["project.manage".to_owned(), "project.view".to_owned()]
    );
}

#[test]
fn r12_missing_invisible_and_cyclic_includes() {
    let mut index = owned_account();
    let mut a = mk_role("a", RoleScope::Account, &["a"]);
    a.spec.includes = vec!["b".into()];
    let mut b = mk_role("b", RoleScope::Account, &["b"]);
    b.spec.includes = vec!["a".into()];
    let mut c = mk_role("c", RoleScope::Account, &["c"]);
    c.spec.includes = vec!["ghost".into()];
    let mut private = mk_role("private", RoleScope::Account, &["p"]);
    private.spec.account = Some("acme".into());
    let mut shared = mk_role("shared", RoleScope::Account, &["s"]);
    shared.spec.includes = vec!["private".into()];
    for r in [a.clone(), b, c.clone(), private, shared.clone()] {
        index.apply(r.into());
    }
    let problem = |name| {
        engine::evaluate_role(&index, NS, name)
            .and_then(|e| e.problem)
            .map(|p| p.message)
    };
    assert_eq!(
        problem("a").as_deref(),
        Some("[R12] roles include each other in a cycle: a -> b -> a")
    );
    assert_eq!(
        problem("c").as_deref(),
        Some("[R12] role c includes ghost, which does not exist")
    );
    assert!(problem("shared").is_some_and(|m| m.contains("cannot see")));
    assert_eq!(
        denied_by(&update(
            &index,
            mk_role("a", RoleScope::Account, &["a"]),
            a.clone()
        )),
        Some(Reason::InvalidIncludes),
        "a cycle never heals"
    );
    assert_eq!(
        warned_by(&create(&index, c)),
        vec![Reason::IncludeNotFound],
        "a missing include may still arrive"
    );
}

// R13 delegated

fn delegation_setup() -> Index {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.member_admin_permission = Some("members.manage".into());
    index.apply(account.into());
    let mut users = mk_role(
        "user-admin",
        RoleScope::Account,
        &["members.manage", "tickets"],
    );
    users.spec.exclusive_groups.clear();
    index.apply(users.into());
    index.apply(mk_role("support", RoleScope::Account, &["tickets"]).into());
    index.apply(mk_role("billing", RoleScope::Account, &["billing"]).into());
    let mut carol = mk_member("carol", "acme", MemberType::User);
    carol.spec.identity = Some("carol@acme.example".into());
    index.apply(carol.into());
    index.apply(mk_binding("carol-users", "acme", "carol", "user-admin", None).into());
    let mut dave = mk_member("dave", "acme", MemberType::User);
    dave.spec.identity = Some("dave@acme.example".into());
    index.apply(dave.into());
    index.apply(mk_binding("dave-support", "acme", "dave", "support", None).into());
    index
}

fn create_as(index: &Index, who: &str, object: impl Into<Object>) -> Decision {
    let object = object.into();
    let requester = Requester {
        username: who.to_owned(),
        groups: vec![],
    };
    engine::admit(
        index,
        &Review {
            operation: Operation::Create,
            object: Some(&object),
            old_object: None,
            requester: Some(&requester),
        },
        rolegate::engine::Timestamp::UNIX_EPOCH,
    )
}

#[test]
fn r13_member_admin_grants_what_they_hold() {
    let index = delegation_setup();
    assert!(
        create_as(
            &index,
            "carol@acme.example",
            mk_binding("bob-support", "acme", "bob", "support", None)
        )
        .is_allowed()
    );
    assert!(
        create_as(
            &index,
            "platform-admin",
            mk_binding("bob-billing", "acme", "bob", "billing", None)
        )
        .is_allowed()
    );
}

#[test]
fn r13_escalation_missing_permission_and_own_bindings_are_denied() {
    let index = delegation_setup();
    let carol = "carol@acme.example";
    let escalate = create_as(
        &index,
        carol,
        mk_binding("bob-billing", "acme", "bob", "billing", None),
    );
    assert_eq!(denied_by(&escalate), Some(Reason::DelegationDenied));
    let own = create_as(
        &index,
        carol,
        mk_binding("carol-support", "acme", "carol", "support", None),
    );
    assert_eq!(denied_by(&own), Some(Reason::DelegationDenied));
    let no_admin = create_as(
        &index,
        "dave@acme.example",
        mk_binding("bob-support", "acme", "bob", "support", None),
    );
    assert_eq!(denied_by(&no_admin), Some(Reason::DelegationDenied));
    let Decision::Deny(v) = escalate else {
        unreachable!()
    };
    assert_eq!(
        v.message,
        "[R13] member carol may not grant role billing on the account: they do not hold billing there, and the account sets no spec.bindPermission"
    );
}

// R14 default and R15 implicit

#[test]
fn r14_members_without_bindings_hold_default_roles() {
    let mut index = owned_account();
    let mut dev = mk_role("dev", RoleScope::Account, &["content.create"]);
    dev.spec.default = true;
    index.apply(dev.into());
    index.apply(mk_role("admin", RoleScope::Account, &["platform.manage"]).into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert!(eval.members["bob"].access.defaulted);
    assert_eq!(
        eval.members["bob"].access.permissions.account,
        vec!["content.create".to_owned()]
    );
    index.apply(mk_binding("bob-admin", "acme", "bob", "admin", None).into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert!(!eval.members["bob"].access.defaulted);
    assert_eq!(
        eval.members["bob"].access.permissions.account,
        vec!["platform.manage".to_owned()]
    );
}

#[test]
fn r15_account_level_permissions_reach_every_project() {
    let mut index = owned_account();
    project_roles(&mut index);
    index.apply(mk_role("support", RoleScope::Account, &["tickets"]).into());
    index.apply(mk_binding("bob-support", "acme", "bob", "support", None).into());
    index.apply(mk_binding("bob-pv-web", "acme", "bob", "project-viewer", Some("web")).into());
    let access =
        &engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH).members
            ["bob"]
            .access;
    // Stated once: the account-level grant under `account`, a project only with what it adds.
    assert_eq!(access.permissions.account, vec!["tickets".to_owned()]);
    assert!(!access.permissions.projects.contains_key("shop"));
    assert_eq!(
        access.permissions.projects["web"],
        vec!["project.view".to_owned()]
    );
    assert_eq!(
        access.roles.projects["web"],
        vec!["project-viewer".to_owned()]
    );
    // Effective on a project: account ∪ projects[p].
    assert_eq!(
        access.permissions_at(Some("shop")),
        ["tickets"].into_iter().collect()
    );
    assert_eq!(
        access.permissions_at(Some("web")),
        ["project.view", "tickets"].into_iter().collect()
    );
    // `explain` lays it out per project, the account-level access on every one.
    let (roles, permissions) = access.expanded(["shop", "web"]);
    assert_eq!(permissions.projects["shop"], vec!["tickets".to_owned()]);
    assert_eq!(
        permissions.projects["web"],
        vec!["project.view".to_owned(), "tickets".to_owned()]
    );
    assert_eq!(
        roles.projects["web"],
        vec!["project-viewer".to_owned(), "support".to_owned()]
    );
}

#[test]
fn r15_a_member_status_does_not_grow_with_the_project_count() {
    let mut index = owned_account();
    let projects: Vec<String> = (0..5_000).map(|i| format!("p{i}")).collect();
    let names: Vec<&str> = projects.iter().map(String::as_str).collect();
    index.apply(mk_account("acme", &names).into());
    index.apply(mk_role("support", RoleScope::Account, &["tickets"]).into());
    index.apply(mk_binding("bob-support", "acme", "bob", "support", None).into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    let access = &eval.members["bob"].access;
    assert!(access.permissions.projects.is_empty());
    assert!(access.roles.projects.is_empty());
    assert_eq!(
        access.permissions_at(Some("p4999")),
        ["tickets"].into_iter().collect()
    );
}

// R16 reference

#[test]
fn r16_dangling_references_are_reported_and_heal() {
    let mut index = owned_account();
    project_roles(&mut index);
    let early = mk_binding("carol-pv", "acme", "carol", "project-viewer", Some("blog"));
    assert_eq!(
        denied_by(&create(&index, early.clone())),
        None,
        "GitOps order: never denied"
    );
    assert_eq!(
        warned_by(&create(&index, early.clone())),
        vec![Reason::ProjectNotFound]
    );
    index.apply(early.into());
    let v = accepted(&index, "carol-pv").expect_err("project missing");
    assert_eq!(v.reason, "ProjectNotFound");
    index.apply(mk_account("acme", &["shop", "web", "blog"]).into());
    assert_eq!(
        accepted(&index, "carol-pv").unwrap_err().reason,
        "MemberNotFound"
    );
    index.apply(mk_member("carol", "acme", MemberType::User).into());
    assert_eq!(accepted(&index, "carol-pv"), Ok(()));
}

#[test]
fn r16_missing_account_role() {
    let mut index = owned_account();
    index.apply(mk_binding("x", "acme", "bob", "nope", None).into());
    assert_eq!(accepted(&index, "x").unwrap_err().reason, "RoleNotFound");
    index.apply(mk_binding("y", "ghost", "bob", "owner", None).into());
    let eval = engine::evaluate_account(
        &index,
        &rolegate::engine::AccountKey::new(NS, "ghost"),
        rolegate::engine::Timestamp::UNIX_EPOCH,
    );
    assert_eq!(
        eval.bindings["y"].accepted.as_ref().unwrap_err().reason,
        "AccountNotFound"
    );
}

#[test]
fn every_reason_is_camel_case_and_belongs_to_the_rule_that_lists_it() {
    let mut seen = std::collections::BTreeSet::new();
    for rule in RuleId::ALL {
        for &reason in rule.reasons() {
            assert_eq!(reason.rule(), rule, "{reason} is listed under {rule}");
            assert!(seen.insert(reason), "{reason} is listed twice");
            let text = reason.as_str();
            assert!(
                text.starts_with(|c: char| c.is_ascii_uppercase())
                    && text.chars().all(|c| c.is_ascii_alphanumeric()),
                "{text} is not CamelCase"
            );
            let v = Violation::new(reason, "x");
            assert_eq!(
                (v.rule, v.message.as_str()),
                (rule, format!("[{rule}] x").as_str())
            );
        }
    }
    assert!(
        RuleId::R15.reasons().is_empty(),
        "R15 is a behaviour, never broken"
    );
}

#[test]
fn r4_the_moved_owner_binding_does_not_count_as_holding_the_successor_role() {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.ownership.successor_role = Some("company-admin".into());
    index.apply(account.into());
    index.apply(mk_role("company-admin", RoleScope::Account, &["company.admin"]).into());
    let mut owner = mk_owner_role("owner");
    owner.spec.includes = vec!["company-admin".into()];
    index.apply(owner.into());
    assert_eq!(
        denied_by(&transfer(&index)),
        Some(Reason::OwnerTransferDenied),
        "bob holds nothing before the transfer"
    );
}
