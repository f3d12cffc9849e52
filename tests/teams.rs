//! Teams through the engine's public entry points: one passing and one failing case for every
//! team path of R5, R7, R8, R9, R13, R14, R16 and R17, member-by-member resolution, and scoped
//! delegation with the bind right.

mod support;

use rolegate::api::*;
use rolegate::engine::{self, AccountKey, Decision, Index, Operation, Reason, Requester, Review};
use support::*;

fn admit(
    index: &Index,
    operation: Operation,
    old: Option<Object>,
    new: Option<Object>,
    who: Option<&str>,
) -> Decision {
    let requester = who.map(|w| Requester {
        username: w.to_owned(),
        groups: vec![],
    });
    engine::admit(
        index,
        &Review {
            operation,
            object: new.as_ref(),
            old_object: old.as_ref(),
            requester: requester.as_ref(),
        },
        rolegate::engine::Timestamp::UNIX_EPOCH,
    )
}

fn create(index: &Index, object: impl Into<Object>) -> Decision {
    admit(index, Operation::Create, None, Some(object.into()), None)
}

fn update(index: &Index, old: impl Into<Object>, new: impl Into<Object>) -> Decision {
    admit(
        index,
        Operation::Update,
        Some(old.into()),
        Some(new.into()),
        None,
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

fn verdict(index: &Index, binding: &str) -> engine::BindingVerdict {
    engine::evaluate_account(index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH)
        .bindings
        .get(binding)
        .cloned()
        .expect("binding is evaluated")
}

fn team_problems(index: &Index, team: &str) -> Vec<Reason> {
    engine::evaluate_account(index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH)
        .teams
        .get(team)
        .map(|t| t.problems.iter().map(|v| v.reason).collect())
        .unwrap_or_default()
}

fn project_roles(index: &Index) -> Index {
    let mut index = clone(index);
    let mut web = mk_role("hosting-web", RoleScope::Project, &["web.manage"]);
    web.spec.exclusive_groups = vec!["hosting-specific".into()];
    let mut mail = mk_role("hosting-mail", RoleScope::Project, &["mail.manage"]);
    mail.spec.exclusive_groups = vec!["hosting-specific".into()];
    index.apply(web.into());
    index.apply(mail.into());
    index
}

/// A copy of an index, through the objects it was built from.
fn clone(index: &Index) -> Index {
    let mut out = Index::new();
    let Some(ns) = index.namespace(NS) else {
        return out;
    };
    for (kind, name) in index
        .names(Kind::Account)
        .into_iter()
        .map(|n| (Kind::Account, n.1))
        .chain(
            index
                .names(Kind::Member)
                .into_iter()
                .map(|n| (Kind::Member, n.1)),
        )
        .chain(
            index
                .names(Kind::Team)
                .into_iter()
                .map(|n| (Kind::Team, n.1)),
        )
        .chain(
            index
                .names(Kind::Role)
                .into_iter()
                .map(|n| (Kind::Role, n.1)),
        )
        .chain(
            index
                .names(Kind::RoleBinding)
                .into_iter()
                .map(|n| (Kind::RoleBinding, n.1)),
        )
    {
        let entry = match kind {
            Kind::Account => ns.account(&name).cloned().map(engine::Entry::Account),
            Kind::Member => ns.member(&name).cloned().map(engine::Entry::Member),
            Kind::Team => ns.team(&name).cloned().map(engine::Entry::Team),
            Kind::Role => ns.role(&name).cloned().map(engine::Entry::Role),
            Kind::RoleBinding => ns.binding(&name).cloned().map(engine::Entry::RoleBinding),
        };
        if let Some(entry) = entry {
            out.apply_entry(NS, entry);
        }
    }
    out
}

/// acme (projects shop, web) with owner alice, bob and carol, the hosting roles, and team
/// `agency` of bob and carol.
fn with_team() -> Index {
    let mut index = project_roles(&owned_account());
    index.apply(mk_member("carol", "acme", MemberType::User).into());
    index.apply(mk_team("agency", "acme", &["bob", "carol"]).into());
    index
}

// R5 through teams

#[test]
fn r5_team_binding_and_direct_binding_on_different_projects_are_fine() {
    let mut index = with_team();
    index.apply(
        created_at(
            mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")),
            1,
        )
        .into(),
    );
    let direct = mk_binding("bob-mail", "acme", "bob", "hosting-mail", Some("web"));
    assert!(create(&index, direct.clone()).is_allowed());
    index.apply(created_at(direct, 2).into());
    assert_eq!(verdict(&index, "bob-mail").accepted, Ok(()));
    assert!(verdict(&index, "agency-web").unreached.is_empty());
}

#[test]
fn r5_through_a_team_conflicts_with_a_direct_binding() {
    let mut index = with_team();
    index.apply(
        created_at(
            mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")),
            1,
        )
        .into(),
    );
    let direct = mk_binding("bob-mail", "acme", "bob", "hosting-mail", Some("shop"));
    let decision = create(&index, direct.clone());
    let Decision::Deny(v) = &decision else {
        panic!("{decision:?}")
    };
    assert_eq!(v.reason, Reason::ExclusiveRoleConflict);
    assert!(
        v.message.contains("binding agency-web of team agency"),
        "{}",
        v.message
    );
    // Got in anyway (webhook down): the older team grant wins for bob, the direct one loses.
    index.apply(created_at(direct, 2).into());
    assert_eq!(
        verdict(&index, "bob-mail").accepted.err().map(|v| v.reason),
        Some(Reason::ExclusiveRoleConflict)
    );
    assert_eq!(verdict(&index, "agency-web").accepted, Ok(()));
}

#[test]
fn r5_through_two_teams_the_older_wins_member_by_member() {
    let mut index = with_team();
    index.apply(mk_member("dan", "acme", MemberType::User).into());
    index.apply(mk_team("mailers", "acme", &["carol", "dan"]).into());
    index.apply(
        created_at(
            mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")),
            1,
        )
        .into(),
    );
    let mailers = mk_team_binding(
        "mailers-mail",
        "acme",
        "mailers",
        "hosting-mail",
        Some("shop"),
    );
    assert_eq!(
        denied_by(&create(&index, mailers.clone())),
        Some(Reason::ExclusiveRoleConflict)
    );
    index.apply(created_at(mailers, 2).into());
    // carol is in both teams: the newer team binding does not reach her, but still reaches dan.
    let v = verdict(&index, "mailers-mail");
    assert_eq!(v.accepted, Ok(()));
    let unreached: Vec<(&str, Reason)> = v
        .unreached
        .iter()
        .map(|(m, v)| (m.as_str(), v.reason))
        .collect();
    assert_eq!(unreached, [("carol", Reason::ExclusiveRoleConflict)]);
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert_eq!(
        eval.members["dan"].access.roles.projects["shop"],
        ["hosting-mail"]
    );
    assert_eq!(
        eval.members["carol"].access.roles.projects["shop"],
        ["hosting-web"]
    );
    assert_eq!(eval.members["carol"].refused.len(), 1);
    // A team binding that loses for every member it reaches is not accepted.
    let mut index = with_team();
    index.apply(mk_team("mailers", "acme", &["carol"]).into());
    index.apply(
        created_at(
            mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")),
            1,
        )
        .into(),
    );
    index.apply(
        created_at(
            mk_team_binding(
                "mailers-mail",
                "acme",
                "mailers",
                "hosting-mail",
                Some("shop"),
            ),
            2,
        )
        .into(),
    );
    assert_eq!(
        verdict(&index, "mailers-mail")
            .accepted
            .err()
            .map(|v| v.reason),
        Some(Reason::ExclusiveRoleConflict)
    );
}

#[test]
fn r5_adding_a_member_to_a_team_is_judged_like_granting_it_the_teams_roles() {
    let mut index = with_team();
    index.apply(mk_member("dan", "acme", MemberType::User).into());
    index.apply(
        created_at(
            mk_binding("dan-mail", "acme", "dan", "hosting-mail", Some("shop")),
            1,
        )
        .into(),
    );
    index.apply(
        created_at(
            mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")),
            2,
        )
        .into(),
    );
    let old = mk_team("agency", "acme", &["bob", "carol"]);
    let with_dan = mk_team("agency", "acme", &["bob", "carol", "dan"]);
    let decision = update(&index, old.clone(), with_dan.clone());
    assert_eq!(
        denied_by(&decision),
        Some(Reason::ExclusiveRoleConflict),
        "{decision:?}"
    );
    // Adding a member without a conflicting grant, and removing one, are fine.
    index.apply(mk_member("erin", "acme", MemberType::User).into());
    assert!(
        update(
            &index,
            old.clone(),
            mk_team("agency", "acme", &["bob", "carol", "erin"])
        )
        .is_allowed()
    );
    assert!(update(&index, old, mk_team("agency", "acme", &["bob"])).is_allowed());
    // An older team binding makes dan's newer direct binding lose: also denied.
    let mut index = with_team();
    index.apply(mk_member("dan", "acme", MemberType::User).into());
    index.apply(
        created_at(
            mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")),
            1,
        )
        .into(),
    );
    index.apply(
        created_at(
            mk_binding("dan-mail", "acme", "dan", "hosting-mail", Some("shop")),
            2,
        )
        .into(),
    );
    let decision = update(
        &index,
        mk_team("agency", "acme", &["bob", "carol"]),
        with_dan,
    );
    assert_eq!(
        denied_by(&decision),
        Some(Reason::ExclusiveRoleConflict),
        "{decision:?}"
    );
}

// R7 and R8 through teams

#[test]
fn r7_subscriber_in_a_team_receives_no_user_role() {
    let mut index = with_team();
    index.apply(mk_member("sam", "acme", MemberType::Subscriber).into());
    index.apply(
        created_at(
            mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")),
            1,
        )
        .into(),
    );
    let old = mk_team("agency", "acme", &["bob", "carol"]);
    let with_sam = mk_team("agency", "acme", &["bob", "carol", "sam"]);
    assert_eq!(
        denied_by(&update(&index, old, with_sam.clone())),
        Some(Reason::MemberTypeNotAllowed)
    );
    index.apply(with_sam.into());
    let v = verdict(&index, "agency-web");
    assert_eq!(v.accepted, Ok(()));
    let unreached: Vec<(&str, Reason)> = v
        .unreached
        .iter()
        .map(|(m, v)| (m.as_str(), v.reason))
        .collect();
    assert_eq!(unreached, [("sam", Reason::MemberTypeNotAllowed)]);
    // A team of users only is fine.
    let mut index = with_team();
    let b = mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop"));
    assert!(create(&index, b.clone()).is_allowed());
    index.apply(b.into());
    assert!(verdict(&index, "agency-web").unreached.is_empty());
}

#[test]
fn r8_a_team_lists_a_member_of_another_account_or_a_binding_names_a_foreign_team() {
    let mut index = with_team();
    index.apply(mk_account("globex", &[]).into());
    index.apply(mk_member("gus", "globex", MemberType::User).into());
    let foreign = mk_team("agency", "acme", &["bob", "gus"]);
    assert_eq!(
        denied_by(&update(
            &index,
            mk_team("agency", "acme", &["bob", "carol"]),
            foreign.clone()
        )),
        Some(Reason::AccountMismatch)
    );
    index.apply(foreign.into());
    assert_eq!(team_problems(&index, "agency"), [Reason::AccountMismatch]);
    index
        .apply(mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")).into());
    // gus receives nothing through the team.
    let eval = engine::evaluate_account(
        &index,
        &AccountKey::new(NS, "globex"),
        rolegate::engine::Timestamp::UNIX_EPOCH,
    );
    assert!(eval.members["gus"].access.roles.projects.is_empty());
    // A binding of acme naming a team of globex.
    index.apply(mk_team("globex-team", "globex", &["gus"]).into());
    let b = mk_team_binding("x-web", "acme", "globex-team", "hosting-web", Some("shop"));
    assert_eq!(denied_by(&create(&index, b)), Some(Reason::AccountMismatch));
    // The team of its own members only is fine.
    assert!(team_problems(&with_team(), "agency").is_empty());
}

// R9, R14, R16, R17

#[test]
fn r9_a_direct_binding_covered_by_a_team_grant_is_redundant() {
    let mut index = with_team();
    index.apply(
        created_at(
            mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")),
            1,
        )
        .into(),
    );
    let same = mk_binding("bob-web", "acme", "bob", "hosting-web", Some("shop"));
    assert_eq!(
        warned_by(&create(&index, same.clone())),
        [Reason::RedundantBinding]
    );
    index.apply(created_at(same, 2).into());
    assert!(verdict(&index, "bob-web").redundant.is_some());
    // The team binding still gives carol something, so it is not redundant.
    assert!(verdict(&index, "agency-web").redundant.is_none());
    // On another project, it grants something new.
    let other = mk_binding("bob-web2", "acme", "bob", "hosting-web", Some("web"));
    assert!(warned_by(&create(&index, other)).is_empty());
}

#[test]
fn r14_a_member_whose_only_grant_comes_from_a_team_holds_no_default_role() {
    let mut index = with_team();
    let mut dev = mk_role("dev", RoleScope::Account, &["content.edit"]);
    dev.spec.default = true;
    index.apply(dev.into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert!(eval.members["carol"].access.defaulted);
    assert_eq!(eval.members["carol"].access.roles.account, ["dev"]);
    index
        .apply(mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")).into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert!(!eval.members["carol"].access.defaulted);
    assert!(eval.members["carol"].access.roles.account.is_empty());
    let sources = &eval.members["carol"].sources;
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].team.as_deref(), Some("agency"));
}

#[test]
fn r16_missing_team_and_missing_team_member_are_reported_and_heal() {
    let mut index = project_roles(&owned_account());
    let b = mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop"));
    assert_eq!(
        warned_by(&create(&index, b.clone())),
        [Reason::TeamNotFound]
    );
    index.apply(b.into());
    assert_eq!(
        verdict(&index, "agency-web")
            .accepted
            .err()
            .map(|v| v.reason),
        Some(Reason::TeamNotFound)
    );
    let team = mk_team("agency", "acme", &["bob", "carol"]);
    assert_eq!(
        warned_by(&create(&index, team.clone())),
        [Reason::MemberNotFound]
    );
    index.apply(team.into());
    assert_eq!(verdict(&index, "agency-web").accepted, Ok(()));
    assert_eq!(team_problems(&index, "agency"), [Reason::MemberNotFound]);
    index.apply(mk_member("carol", "acme", MemberType::User).into());
    assert!(team_problems(&index, "agency").is_empty());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    assert_eq!(eval.teams["agency"].resolved.len(), 2);
    assert_eq!(
        eval.members["carol"].access.roles.projects["shop"],
        ["hosting-web"]
    );
}

#[test]
fn r17_a_binding_names_exactly_one_subject() {
    let mut index = with_team();
    let mut both = mk_binding("both", "acme", "bob", "hosting-web", Some("shop"));
    both.spec.team = Some("agency".into());
    assert_eq!(
        denied_by(&create(&index, both.clone())),
        Some(Reason::InvalidSubject)
    );
    let mut neither = both.clone();
    neither.metadata.name = Some("neither".into());
    neither.spec.member = None;
    neither.spec.team = None;
    assert_eq!(
        denied_by(&create(&index, neither.clone())),
        Some(Reason::InvalidSubject)
    );
    // Stored anyway (an older CRD without the CEL rule): not accepted, with the rule.
    index.apply(both.into());
    index.apply(neither.into());
    assert_eq!(
        verdict(&index, "both").accepted.err().map(|v| v.reason),
        Some(Reason::InvalidSubject)
    );
    assert_eq!(
        verdict(&index, "neither").accepted.err().map(|v| v.reason),
        Some(Reason::InvalidSubject)
    );
    assert!(
        create(
            &index,
            mk_team_binding("ok", "acme", "agency", "hosting-web", Some("shop"))
        )
        .is_allowed()
    );
}

#[test]
fn r1_the_owner_binding_never_names_a_team() {
    let mut index = with_team();
    index.delete(Kind::RoleBinding, NS, "acme-owner");
    let b = mk_team_binding("acme-owner", "acme", "agency", "owner", None);
    assert_eq!(denied_by(&create(&index, b)), Some(Reason::OwnerNotUnique));
}

#[test]
fn a_team_change_names_the_accounts_it_moves() {
    let mut index = with_team();
    index.apply(mk_account("globex", &[]).into());
    let touched = index.apply(mk_team("agency", "acme", &["bob"]).into());
    assert_eq!(touched.into_iter().collect::<Vec<_>>(), [acme()]);
    // A binding of globex naming acme's team: the team's change moves both accounts (R8).
    index.apply(mk_team_binding("g", "globex", "agency", "hosting-web", Some("shop")).into());
    let touched = index.apply(mk_team("agency", "acme", &["bob", "carol"]).into());
    assert_eq!(touched.len(), 2);
}

// R13: scoped delegation and the bind right

/// The hosting control panel: carol is hosting admin on shop only (members.manage there),
/// uma a user administrator with the bind right and no service permission.
fn delegation() -> Index {
    let mut index = with_team();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.member_admin_permission = Some("members.manage".into());
    account.spec.bind_permission = Some("roles.bind".into());
    index.apply(account.into());
    index.apply(
        mk_role(
            "hosting-admin",
            RoleScope::Project,
            &["members.manage", "web.manage", "mail.manage"],
        )
        .into(),
    );
    index.apply(
        mk_role(
            "user-admin",
            RoleScope::Account,
            &["members.manage", "roles.bind"],
        )
        .into(),
    );
    index.apply(mk_role("viewer", RoleScope::Account, &["view"]).into());
    index.apply(
        mk_role(
            "binder-of-web",
            RoleScope::Account,
            &["members.manage", "roles.bind:hosting-web"],
        )
        .into(),
    );
    for (name, identity) in [("carol", "carol@x"), ("uma", "uma@x"), ("wes", "wes@x")] {
        let mut m = mk_member(name, "acme", MemberType::User);
        m.spec.identity = Some(identity.into());
        index.apply(m.into());
    }
    index.apply(mk_member("dan", "acme", MemberType::User).into());
    index.apply(
        mk_binding(
            "carol-admin",
            "acme",
            "carol",
            "hosting-admin",
            Some("shop"),
        )
        .into(),
    );
    index.apply(mk_binding("uma-users", "acme", "uma", "user-admin", None).into());
    index.apply(mk_binding("wes-binder", "acme", "wes", "binder-of-web", None).into());
    index.apply(mk_team("agency", "acme", &["bob", "carol"]).into());
    index.apply(mk_team("ops", "acme", &["dan"]).into());
    index
}

fn create_as(index: &Index, who: &str, object: impl Into<Object>) -> Decision {
    admit(
        index,
        Operation::Create,
        None,
        Some(object.into()),
        Some(who),
    )
}

#[test]
fn r13_a_hosting_admin_delegates_on_its_own_hosting_and_nowhere_else() {
    let index = delegation();
    let on_shop = mk_binding("dan-web", "acme", "dan", "hosting-web", Some("shop"));
    assert!(create_as(&index, "carol@x", on_shop).is_allowed());
    let on_web = mk_binding("dan-web2", "acme", "dan", "hosting-web", Some("web"));
    assert_eq!(
        denied_by(&create_as(&index, "carol@x", on_web)),
        Some(Reason::DelegationDenied)
    );
    let account_level = mk_binding("dan-viewer", "acme", "dan", "viewer", None);
    assert_eq!(
        denied_by(&create_as(&index, "carol@x", account_level)),
        Some(Reason::DelegationDenied)
    );
    let team = mk_team("new", "acme", &["dan"]);
    assert_eq!(
        denied_by(&create_as(&index, "carol@x", team)),
        Some(Reason::DelegationDenied)
    );
    // A team binding on its hosting is fine, unless the team reaches carol herself.
    let ops = mk_team_binding("ops-web", "acme", "ops", "hosting-web", Some("shop"));
    assert!(create_as(&index, "carol@x", ops).is_allowed());
    let own_team = mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop"));
    let decision = create_as(&index, "carol@x", own_team);
    let Decision::Deny(v) = &decision else {
        panic!("{decision:?}")
    };
    assert!(v.message.contains("through team agency"), "{}", v.message);
}

#[test]
fn r13_the_bind_right_grants_roles_the_requester_does_not_hold() {
    let index = delegation();
    // uma holds roles.bind at account scope: any non-owner role, anywhere.
    let web = mk_binding("dan-web", "acme", "dan", "hosting-web", Some("web"));
    assert!(create_as(&index, "uma@x", web.clone()).is_allowed());
    assert!(
        create_as(
            &index,
            "uma@x",
            mk_binding("dan-viewer", "acme", "dan", "viewer", None)
        )
        .is_allowed()
    );
    // Never an owner role.
    let mut index2 = clone(&index);
    index2.delete(Kind::RoleBinding, NS, "acme-owner");
    let owner = mk_binding("acme-owner", "acme", "dan", "owner", None);
    assert_eq!(
        denied_by(&create_as(&index2, "uma@x", owner)),
        Some(Reason::DelegationDenied)
    );
    // wes holds roles.bind:hosting-web: that one role only.
    assert!(create_as(&index, "wes@x", web).is_allowed());
    let mail = mk_binding("dan-mail", "acme", "dan", "hosting-mail", Some("web"));
    assert_eq!(
        denied_by(&create_as(&index, "wes@x", mail)),
        Some(Reason::DelegationDenied)
    );
    // Without bindPermission on the account, nobody has the bind right.
    let mut index3 = clone(&index);
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.member_admin_permission = Some("members.manage".into());
    index3.apply(account.into());
    let web = mk_binding("dan-web", "acme", "dan", "hosting-web", Some("web"));
    assert_eq!(
        denied_by(&create_as(&index3, "uma@x", web)),
        Some(Reason::DelegationDenied)
    );
}

#[test]
fn r13_teams_changes_need_the_permission_and_never_touch_the_requester() {
    let mut index = delegation();
    index.apply(mk_team_binding("ops-web", "acme", "ops", "hosting-web", Some("shop")).into());
    let old = mk_team("ops", "acme", &["dan"]);
    let as_uma = |index: &Index, new: Team| {
        admit(
            index,
            Operation::Update,
            Some(old.clone().into()),
            Some(new.into()),
            Some("uma@x"),
        )
    };
    assert!(as_uma(&index, mk_team("ops", "acme", &["dan", "bob"])).is_allowed());
    assert_eq!(
        denied_by(&as_uma(&index, mk_team("ops", "acme", &["dan", "uma"]))),
        Some(Reason::DelegationDenied)
    );
    // dave-like members without members.manage cannot change teams.
    let no_admin = admit(
        &index,
        Operation::Update,
        Some(old.clone().into()),
        Some(mk_team("ops", "acme", &["dan", "bob"]).into()),
        Some("carol@x"),
    );
    assert_eq!(denied_by(&no_admin), Some(Reason::DelegationDenied));
    // Removing oneself, or deleting one's own team.
    let agency = mk_team("agency", "acme", &["bob", "carol"]);
    let leave = admit(
        &index,
        Operation::Update,
        Some(agency.clone().into()),
        Some(mk_team("agency", "acme", &["bob"]).into()),
        Some("uma@x"),
    );
    assert!(leave.is_allowed(), "{leave:?}");
    let mut uma_team = mk_team("umas", "acme", &["uma"]);
    index.apply(uma_team.clone().into());
    uma_team.spec.members.clear();
    let removes_self = admit(
        &index,
        Operation::Update,
        Some(mk_team("umas", "acme", &["uma"]).into()),
        Some(uma_team.into()),
        Some("uma@x"),
    );
    assert_eq!(denied_by(&removes_self), Some(Reason::DelegationDenied));
    let deletes = admit(
        &index,
        Operation::Delete,
        Some(mk_team("umas", "acme", &["uma"]).into()),
        None,
        Some("uma@x"),
    );
    assert_eq!(denied_by(&deletes), Some(Reason::DelegationDenied));
    // Adding a member to a team grants its roles: without the bind right, only what one holds.
    let mut index4 = clone(&index);
    index4.apply(mk_role("plain-admin", RoleScope::Account, &["members.manage"]).into());
    index4.apply(mk_binding("uma-users", "acme", "uma", "plain-admin", None).into());
    assert_eq!(
        denied_by(&as_uma(&index4, mk_team("ops", "acme", &["dan", "bob"]))),
        Some(Reason::DelegationDenied)
    );
    assert!(as_uma(&index4, mk_team("ops", "acme", &[])).is_allowed());
}

#[test]
fn r13_no_escalation_holds_on_every_path_not_only_on_a_grant() {
    let mut index = delegation();
    index.apply(mk_role("plain-admin", RoleScope::Account, &["members.manage"]).into());
    let mut amy = mk_member("amy", "acme", MemberType::User);
    amy.spec.identity = Some("amy@x".into());
    index.apply(amy.into());
    index.apply(mk_binding("amy-admin", "acme", "amy", "plain-admin", None).into());
    // A member arriving in a team that already grants a role amy does not hold.
    index.apply(mk_team("vip", "acme", &["zed"]).into());
    index.apply(mk_team_binding("vip-viewer", "acme", "vip", "viewer", None).into());
    let zed = mk_member("zed", "acme", MemberType::User);
    assert_eq!(
        denied_by(&create_as(&index, "amy@x", zed)),
        Some(Reason::DelegationDenied)
    );
    let yan = mk_member("yan", "acme", MemberType::User);
    assert!(create_as(&index, "amy@x", yan).is_allowed());
    // Deleting the older of two exclusive grants would let the newer one win.
    index.apply(
        created_at(
            mk_binding("dan-web", "acme", "dan", "hosting-web", Some("shop")),
            1,
        )
        .into(),
    );
    index.apply(
        created_at(
            mk_binding("dan-mail", "acme", "dan", "hosting-mail", Some("shop")),
            2,
        )
        .into(),
    );
    let old = stored_binding(&index, "dan-web");
    let decision = admit(
        &index,
        Operation::Delete,
        Some(old.into()),
        None,
        Some("amy@x"),
    );
    let Decision::Deny(v) = &decision else {
        panic!("{decision:?}")
    };
    assert_eq!(
        v.message,
        "[R13] member amy may not make this change: it would give dan mail.manage on project shop, which they do not hold there, nor the bind permission roles.bind or roles.bind:<role> for a role that grants them"
    );
    // Without spec.bindPermission, the message says so.
    let mut unset = clone(&index);
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.member_admin_permission = Some("members.manage".into());
    unset.apply(account.into());
    let old = stored_binding(&unset, "dan-web");
    let decision = admit(
        &unset,
        Operation::Delete,
        Some(old.into()),
        None,
        Some("amy@x"),
    );
    let Decision::Deny(v) = &decision else {
        panic!("{decision:?}")
    };
    assert!(
        v.message
            .ends_with("which they do not hold there, and the account sets no spec.bindPermission"),
        "{}",
        v.message
    );
    // With the bind right (uma), the same deletion is fine.
    let old = stored_binding(&index, "dan-web");
    assert!(
        admit(
            &index,
            Operation::Delete,
            Some(old.into()),
            None,
            Some("uma@x")
        )
        .is_allowed()
    );
}

#[test]
fn member_status_shows_where_each_role_comes_from_and_what_it_does_not_receive() {
    let mut index = with_team();
    index.apply(mk_member("sam", "acme", MemberType::Subscriber).into());
    index.apply(mk_team("agency", "acme", &["bob", "sam"]).into());
    index
        .apply(mk_team_binding("agency-web", "acme", "agency", "hosting-web", Some("shop")).into());
    let eval = engine::evaluate_account(&index, &acme(), rolegate::engine::Timestamp::UNIX_EPOCH);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    );
    let bob = rolegate::controller::status::member(&eval.members["bob"], Some(1), None, &now);
    assert_eq!(
        bob.sources,
        [RoleSource {
            role: "hosting-web".into(),
            project: Some("shop".into()),
            binding: "agency-web".into(),
            team: Some("agency".into()),
        }]
    );
    let sam = rolegate::controller::status::member(&eval.members["sam"], Some(1), None, &now);
    assert!(sam.sources.is_empty());
    assert_eq!(sam.refused.len(), 1);
    assert_eq!(
        (sam.refused[0].rule.as_str(), sam.refused[0].reason.as_str()),
        ("R7", "MemberTypeNotAllowed")
    );
    assert_eq!(sam.refused[0].source.team.as_deref(), Some("agency"));
    // The binding's own status names the member it does not reach.
    let binding = rolegate::controller::status::binding(
        eval.bindings.get("agency-web"),
        &rolegate::engine::rules::reference::account_not_found("acme"),
        Some(1),
        None,
        &now,
    );
    assert_eq!(binding.unreached.len(), 1);
    assert_eq!(binding.unreached[0].member, "sam");
    assert_eq!(binding.unreached[0].rule, "R7");
}

// R4 through teams (issue 24): a successor holds the successor role whichever way it is granted.

/// acme as the managed-WordPress shape: transfer allowed to a holder of company-admin, the owner
/// role includes company-admin, alice owns it, bob is in team `admins`.
fn successor_world() -> Index {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.ownership.successor_role = Some("company-admin".into());
    index.apply(account.into());
    index.apply(mk_role("company-admin", RoleScope::Account, &["company.admin"]).into());
    let mut owner = mk_owner_role("owner");
    owner.spec.includes = vec!["company-admin".into()];
    index.apply(owner.into());
    index.apply(mk_team("admins", "acme", &["bob"]).into());
    index
}

/// Moves `acme-owner` from alice to bob, judged at `now`.
fn transfer_at(index: &Index, now: &str) -> Decision {
    let old: Object = mk_binding("acme-owner", "acme", "alice", "owner", None).into();
    let new: Object = mk_binding("acme-owner", "acme", "bob", "owner", None).into();
    engine::admit(
        index,
        &Review {
            operation: Operation::Update,
            object: Some(&new),
            old_object: Some(&old),
            requester: None,
        },
        now.parse().expect("an instant"),
    )
}

const NOW: &str = "2030-06-01T00:00:00Z";

fn windowed(mut b: RoleBinding, from: Option<&str>, until: Option<&str>) -> RoleBinding {
    let t = |s: &str| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(s.parse().expect("t"));
    b.spec.valid_from = from.map(t);
    b.spec.valid_until = until.map(t);
    b
}

#[test]
fn r4_a_successor_holding_the_successor_role_through_a_team_may_take_ownership() {
    let mut index = successor_world();
    let decision = transfer_at(&index, NOW);
    let Decision::Deny(v) = &decision else {
        panic!("bob holds nothing yet: {decision:?}")
    };
    assert_eq!(
        v.message,
        "[R4] bob cannot become the owner of account acme: a new owner must already hold role company-admin on the account"
    );
    index.apply(
        mk_team_binding(
            "admins-company-admin",
            "acme",
            "admins",
            "company-admin",
            None,
        )
        .into(),
    );
    assert_eq!(denied_by(&transfer_at(&index, NOW)), None);
    // The same through a second team, the role reached through includes.
    let mut index = successor_world();
    let mut lead = mk_role("lead", RoleScope::Account, &["lead"]);
    lead.spec.includes = vec!["company-admin".into()];
    index.apply(lead.into());
    index.apply(mk_team("leads", "acme", &["bob"]).into());
    index.apply(mk_team_binding("leads-lead", "acme", "leads", "lead", None).into());
    assert_eq!(denied_by(&transfer_at(&index, NOW)), None);
}

#[test]
fn r4_a_team_grant_outside_its_window_or_refused_is_not_held() {
    let team_grant = || mk_team_binding("admins-ca", "acme", "admins", "company-admin", None);
    for (from, until, held) in [
        (Some("2030-07-01T00:00:00Z"), None, false),
        (None, Some("2030-05-01T00:00:00Z"), false),
        (
            Some("2030-05-01T00:00:00Z"),
            Some("2030-07-01T00:00:00Z"),
            true,
        ),
    ] {
        let mut index = successor_world();
        index.apply(windowed(team_grant(), from, until).into());
        let expected = (!held).then_some(Reason::OwnerTransferDenied);
        assert_eq!(
            denied_by(&transfer_at(&index, NOW)),
            expected,
            "{from:?}..{until:?}"
        );
    }
    // A team grant that loses to an older exclusive grant (R5) gives bob nothing.
    let mut index = successor_world();
    let mut admin = mk_role("company-admin", RoleScope::Account, &["company.admin"]);
    admin.spec.exclusive_groups = vec!["company".into()];
    let mut billing = mk_role("company-billing", RoleScope::Account, &["billing"]);
    billing.spec.exclusive_groups = vec!["company".into()];
    index.apply(admin.into());
    index.apply(billing.into());
    index.apply(
        created_at(
            mk_binding("bob-billing", "acme", "bob", "company-billing", None),
            1,
        )
        .into(),
    );
    index.apply(created_at(team_grant(), 2).into());
    assert_eq!(
        denied_by(&transfer_at(&index, NOW)),
        Some(Reason::OwnerTransferDenied)
    );
}

#[test]
fn r4_a_default_successor_role_is_held_by_a_member_without_active_grants() {
    // R14: a member that receives no accepted, active grant holds the default roles, and so
    // holds the successor role when it is one.
    let mut index = successor_world();
    let mut admin = mk_role("company-admin", RoleScope::Account, &["company.admin"]);
    admin.spec.default = true;
    index.apply(admin.into());
    assert_eq!(denied_by(&transfer_at(&index, NOW)), None);
    // Once bob receives another active grant, the default no longer applies to him.
    index.apply(mk_role("viewer", RoleScope::Account, &["view"]).into());
    index.apply(mk_binding("bob-viewer", "acme", "bob", "viewer", None).into());
    assert_eq!(
        denied_by(&transfer_at(&index, NOW)),
        Some(Reason::OwnerTransferDenied)
    );
}

#[test]
fn r13_every_escalation_denial_names_the_reason_that_applies() {
    let index = delegation();
    let denial =
        |index: &Index, who: &str, binding: RoleBinding| match create_as(index, who, binding) {
            Decision::Deny(v) => v.message,
            allowed => panic!("{allowed:?}"),
        };
    // uma holds roles.bind at account scope: the reason is that it never covers an owner role.
    let mut ownerless = clone(&index);
    ownerless.delete(Kind::RoleBinding, NS, "acme-owner");
    let owner = mk_binding("acme-owner", "acme", "dan", "owner", None);
    assert_eq!(
        denial(&ownerless, "uma@x", owner.clone()),
        "[R13] member uma may not grant role owner on the account: they do not hold account.own there, and the bind permission roles.bind they hold there never covers an owner role"
    );
    // wes holds only roles.bind:hosting-web, which would not cover the owner role either.
    assert_eq!(
        denial(&ownerless, "wes@x", owner),
        "[R13] member wes may not grant role owner on the account: they do not hold account.own there, and no bind permission covers an owner role"
    );
    // wes lacks the bind right for hosting-mail.
    let mail = mk_binding("dan-mail", "acme", "dan", "hosting-mail", Some("web"));
    assert_eq!(
        denial(&index, "wes@x", mail),
        "[R13] member wes may not grant role hosting-mail on project web: they do not hold mail.manage there, nor the bind permission roles.bind or roles.bind:hosting-mail"
    );
    // Without spec.bindPermission nobody has a bind right.
    let mut unset = clone(&index);
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.member_admin_permission = Some("members.manage".into());
    unset.apply(account.into());
    let web = mk_binding("dan-web", "acme", "dan", "hosting-web", Some("web"));
    assert_eq!(
        denial(&unset, "uma@x", web),
        "[R13] member uma may not grant role hosting-web on project web: they do not hold web.manage there, and the account sets no spec.bindPermission"
    );
}
