//! `rolegate check` on manifests with Teams: every team finding as a diagnostic with file:line,
//! and `--base` judging a team membership change like the webhook.

use std::path::{Path, PathBuf};
use std::process::Command;

const CATALOG: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: owner}
spec: {scope: Account, permissions: [account.own], owner: true}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: hosting-web}
spec: {scope: Project, permissions: [web.manage], exclusiveGroups: [hosting-specific]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: hosting-mail}
spec: {scope: Project, permissions: [mail.manage], exclusiveGroups: [hosting-specific]}
";

const ACCOUNT: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Account
metadata: {name: acme}
spec: {projects: [{name: shop}]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: alice}
spec: {account: acme}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: bob}
spec: {account: acme}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: dan}
spec: {account: acme}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: acme-owner}
spec: {account: acme, member: alice, role: owner}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: agency-web}
spec: {account: acme, team: agency, role: hosting-web, project: shop}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: dan-mail}
spec: {account: acme, member: dan, role: hosting-mail, project: shop}
";

const TEAM: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Team
metadata: {name: agency}
spec: {account: acme, members: [bob]}
";

fn tree(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(name), text).expect("write");
    }
    dir
}

fn check(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .arg("check")
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_clean_tree_with_a_team_passes() {
    let dir = tree(
        "teams-clean",
        &[
            ("catalog.yaml", CATALOG),
            ("account.yaml", ACCOUNT),
            ("team.yaml", TEAM),
        ],
    );
    let (code, stdout) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn team_findings_are_diagnostics_with_file_and_line() {
    let broken = "\
apiVersion: rolegate.dev/v1alpha1
kind: Team
metadata: {name: agency}
spec: {account: acme, members: [bob, ghost, gus, dan]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Account
metadata: {name: globex}
spec: {}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: gus}
spec: {account: globex}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: both}
spec: {account: acme, member: bob, team: agency, role: hosting-web, project: shop}
";
    let dir = tree(
        "teams-broken",
        &[
            ("catalog.yaml", CATALOG),
            ("account.yaml", ACCOUNT),
            ("team.yaml", broken),
        ],
    );
    let (code, stdout) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 1, "{stdout}");
    let has = |s: &str| assert!(stdout.contains(s), "missing `{s}` in:\n{stdout}");
    has(
        "team.yaml:1: error[R16] Team/agency: [R16] team agency lists member ghost, which does not exist",
    );
    has(
        "team.yaml:1: error[R8] Team/agency: [R8] team agency of account acme lists member gus, which belongs to account globex",
    );
    has("team.yaml:16: error[R17] RoleBinding/both:");
    // dan's direct binding and the team's are exclusive on shop: the older (by name) wins.
    has("account.yaml:31: error[R5] RoleBinding/dan-mail:");
}

#[test]
fn base_judges_adding_a_member_to_a_team_like_the_webhook() {
    let base = tree(
        "teams-base-old",
        &[
            ("catalog.yaml", CATALOG),
            ("account.yaml", ACCOUNT),
            ("team.yaml", TEAM),
        ],
    );
    let head = tree(
        "teams-base-new",
        &[
            ("catalog.yaml", CATALOG),
            ("account.yaml", ACCOUNT),
            (
                "team.yaml",
                &TEAM.replace("members: [bob]", "members: [bob, dan]"),
            ),
        ],
    );
    let (code, stdout) = check(&[
        head.to_str().expect("utf8"),
        "--base",
        base.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("team.yaml:1: error[R5] Team/agency: [R5] dan already holds"),
        "{stdout}"
    );
    // Removing a member is never a conflict.
    let smaller = tree(
        "teams-base-smaller",
        &[
            ("catalog.yaml", CATALOG),
            ("account.yaml", ACCOUNT),
            ("team.yaml", &TEAM.replace("members: [bob]", "members: []")),
        ],
    );
    let (code, stdout) = check(&[
        smaller.to_str().expect("utf8"),
        "--base",
        base.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "{stdout}");
}

/// The managed-WordPress shape of issue 24: `wpco` transfers to a holder of company-admin, the
/// owner role includes it, kim owns the account, ann is a plain member.
const WPCO: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: company-admin}
spec: {scope: Account, permissions: [company.admin]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: company-owner}
spec: {scope: Account, permissions: [company.own], includes: [company-admin], owner: true}
---
apiVersion: rolegate.dev/v1alpha1
kind: Account
metadata: {name: wpco}
spec: {ownership: {transfer: Allowed, successorRole: company-admin}}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: kim}
spec: {account: wpco}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: ann}
spec: {account: wpco}
";

const WPCO_ADMINS: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Team
metadata: {name: admins}
spec: {account: wpco, members: [ann]}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: admins-company-admin}
spec: {account: wpco, team: admins, role: company-admin}
";

fn wpco_owner(member: &str) -> String {
    format!(
        "apiVersion: rolegate.dev/v1alpha1\nkind: RoleBinding\nmetadata: {{name: wpco-owner}}\nspec: {{account: wpco, member: {member}, role: company-owner}}\n"
    )
}

/// `check head --base base` for trees given as (file, text) lists.
fn check_base(test: &str, base: &[(&str, &str)], head: &[(&str, &str)]) -> (i32, String) {
    let base = tree(&format!("{test}-base"), base);
    let head = tree(&format!("{test}-head"), head);
    check(&[
        head.to_str().expect("utf8"),
        "--base",
        base.to_str().expect("utf8"),
    ])
}

const R4_DENIAL: &str = "[R4] ann cannot become the owner of account wpco: a new owner must already hold role company-admin on the account";

#[test]
fn base_allows_a_transfer_to_a_member_holding_the_successor_role_through_a_team() {
    let (kim, ann) = (wpco_owner("kim"), wpco_owner("ann"));
    // The team and its binding already in the base.
    let (code, stdout) = check_base(
        "wpco-team-in-base",
        &[
            ("wpco.yaml", WPCO),
            ("admins.yaml", WPCO_ADMINS),
            ("owner.yaml", &kim),
        ],
        &[
            ("wpco.yaml", WPCO),
            ("admins.yaml", WPCO_ADMINS),
            ("owner.yaml", &ann),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    // Created in the same pull request: creates arrive before the owner binding moves.
    let (code, stdout) = check_base(
        "wpco-team-in-change",
        &[("wpco.yaml", WPCO), ("owner.yaml", &kim)],
        &[
            ("wpco.yaml", WPCO),
            ("admins.yaml", WPCO_ADMINS),
            ("owner.yaml", &ann),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    // Without the team, the same transfer fails with R4 on the owner binding.
    let (code, stdout) = check_base(
        "wpco-no-team",
        &[("wpco.yaml", WPCO), ("owner.yaml", &kim)],
        &[("wpco.yaml", WPCO), ("owner.yaml", &ann)],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "owner.yaml:1: error[R4] RoleBinding/wpco-owner: {R4_DENIAL}"
        )),
        "{stdout}"
    );
}

#[test]
fn base_denies_a_transfer_through_a_team_binding_whose_window_has_not_opened() {
    let (kim, ann) = (wpco_owner("kim"), wpco_owner("ann"));
    let later = WPCO_ADMINS.replace(
        "role: company-admin}",
        "role: company-admin, validFrom: 2999-01-01T00:00:00Z}",
    );
    let (code, stdout) = check_base(
        "wpco-team-later",
        &[("wpco.yaml", WPCO), ("owner.yaml", &kim)],
        &[
            ("wpco.yaml", WPCO),
            ("admins.yaml", &later),
            ("owner.yaml", &ann),
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(R4_DENIAL), "{stdout}");
    // Judged at an instant inside the window, the same change passes.
    let base = tree(
        "wpco-team-at-base",
        &[("wpco.yaml", WPCO), ("owner.yaml", &kim)],
    );
    let head = tree(
        "wpco-team-at-head",
        &[
            ("wpco.yaml", WPCO),
            ("admins.yaml", &later),
            ("owner.yaml", &ann),
        ],
    );
    let (code, stdout) = check(&[
        head.to_str().expect("utf8"),
        "--base",
        base.to_str().expect("utf8"),
        "--at",
        "2999-06-01T00:00:00Z",
    ]);
    assert_eq!(code, 0, "{stdout}");
}
