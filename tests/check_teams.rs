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
