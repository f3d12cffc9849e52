//! A realistic tree for benchmarks: N accounts over one shared catalog, each with 2 projects, 5
//! members (User, Service, Subscriber) and 10 bindings, one account in ten with an R5 conflict.
//! With `ROLEGATE_BENCH_TEAMS=1` each account has 7 members, 2 teams of 3 members (one member in
//! both) and 9 bindings of which 3 name a team; the conflict then comes through a team.
//! Deterministic, written as multi-document YAML, 100 accounts per file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const CATALOG: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: owner, namespace: bench}
spec: {scope: Account, owner: true, locked: true, memberTypes: [User], permissions: [account.close], includes: [admin]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: admin, namespace: bench}
spec: {scope: Account, permissions: [members.manage, settings.manage], includes: [billing, support, project-admin]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: billing, namespace: bench}
spec: {scope: Account, permissions: [billing.view, billing.manage]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: support, namespace: bench}
spec: {scope: Account, permissions: [tickets.view, tickets.create]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: auditor, namespace: bench}
spec: {scope: Account, permissions: [audit.view, billing.view]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: users, namespace: bench}
spec: {scope: Account, permissions: [members.manage]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: viewer, namespace: bench}
spec: {scope: Account, default: true, permissions: [account.view]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: project-admin, namespace: bench}
spec: {scope: Project, exclusiveGroups: [project-access], permissions: [project.manage, project.deploy], includes: [project-viewer]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: project-viewer, namespace: bench}
spec: {scope: Project, exclusiveGroups: [project-access], permissions: [project.view]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: deployer, namespace: bench}
spec: {scope: Project, permissions: [project.deploy]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: notifications, namespace: bench}
spec: {scope: Account, memberTypes: [Subscriber], permissions: [notifications.billing.receive]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: stats, namespace: bench}
spec: {scope: Project, permissions: [project.stats.view]}
";

fn doc(out: &mut String, kind: &str, name: &str, spec: &str) {
    let _ = write!(
        out,
        "---\napiVersion: rolegate.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: bench\nspec: {spec}\n"
    );
}

/// Whether the tree has teams (`ROLEGATE_BENCH_TEAMS=1`).
pub fn teams() -> bool {
    std::env::var("ROLEGATE_BENCH_TEAMS").is_ok_and(|v| v == "1")
}

/// What one account holds: (members, teams, bindings, objects including the Account).
pub fn per_account() -> (usize, usize, usize, usize) {
    if teams() {
        (7, 2, 9, 19)
    } else {
        (5, 0, 10, 16)
    }
}

/// One account's objects, in the shape `teams()` chooses.
pub fn account(out: &mut String, i: usize) {
    if teams() {
        account_with_teams(out, i)
    } else {
        account_direct(out, i)
    }
}

fn header(out: &mut String, a: &str, i: usize) {
    doc(
        out,
        "Account",
        a,
        &format!(
            "{{displayName: Account {i}, projects: [{{name: web}}, {{name: shop}}], memberAdminPermission: members.manage}}"
        ),
    );
}

fn members(out: &mut String, a: &str, types: &[&str]) {
    for (m, t) in types.iter().enumerate() {
        doc(
            out,
            "Member",
            &format!("{a}-m{m}"),
            &format!("{{account: {a}, type: {t}, email: m{m}@{a}.example}}"),
        );
    }
}

/// `subject` is `member: NAME` or `team: NAME`.
fn bind(out: &mut String, a: &str, name: &str, subject: &str, role: &str, project: Option<&str>) {
    let project = project
        .map(|p| format!(", project: {p}"))
        .unwrap_or_default();
    doc(
        out,
        "RoleBinding",
        &format!("{a}-{name}"),
        &format!("{{account: {a}, {subject}, role: {role}{project}}}"),
    );
}

/// 1 Account, 7 Members, 2 Teams (`ops`: m1, m2, m5; `dev`: m2, m3, m6), 9 RoleBindings of which
/// 3 name a team. One account in ten binds `dev` to project-viewer on web, where m2 holds
/// project-admin directly: R5 for m2 through the team, which still reaches m3 and m6.
fn account_with_teams(out: &mut String, i: usize) {
    let a = format!("acct-{i}");
    header(out, &a, i);
    members(
        out,
        &a,
        &[
            "User",
            "User",
            "User",
            "Service",
            "Subscriber",
            "User",
            "User",
        ],
    );
    for (team, listed) in [("ops", [1, 2, 5]), ("dev", [2, 3, 6])] {
        let listed: Vec<String> = listed.iter().map(|m| format!("{a}-m{m}")).collect();
        doc(
            out,
            "Team",
            &format!("{a}-{team}"),
            &format!("{{account: {a}, members: [{}]}}", listed.join(", ")),
        );
    }
    let member = |m: usize| format!("member: {a}-m{m}");
    let team = |t: &str| format!("team: {a}-{t}");
    bind(out, &a, "owner", &member(0), "owner", None);
    bind(out, &a, "m1-billing", &member(1), "billing", None);
    bind(
        out,
        &a,
        "m2-pa-web",
        &member(2),
        "project-admin",
        Some("web"),
    );
    bind(
        out,
        &a,
        "m3-deploy-web",
        &member(3),
        "deployer",
        Some("web"),
    );
    bind(
        out,
        &a,
        "m4-notifications",
        &member(4),
        "notifications",
        None,
    );
    bind(out, &a, "m6-users", &member(6), "users", None);
    bind(out, &a, "ops-support", &team("ops"), "support", None);
    bind(
        out,
        &a,
        "ops-pv-shop",
        &team("ops"),
        "project-viewer",
        Some("shop"),
    );
    if i.is_multiple_of(10) {
        bind(
            out,
            &a,
            "dev-pv-web",
            &team("dev"),
            "project-viewer",
            Some("web"),
        );
    } else {
        bind(
            out,
            &a,
            "dev-stats-shop",
            &team("dev"),
            "stats",
            Some("shop"),
        );
    }
}

/// 1 Account, 5 Members, 10 RoleBindings.
fn account_direct(out: &mut String, i: usize) {
    let a = format!("acct-{i}");
    header(out, &a, i);
    members(out, &a, &["User", "User", "User", "Service", "Subscriber"]);
    let member = |m: usize| format!("member: {a}-m{m}");
    bind(out, &a, "owner", &member(0), "owner", None);
    bind(out, &a, "m1-billing", &member(1), "billing", None);
    bind(out, &a, "m1-support", &member(1), "support", None);
    bind(out, &a, "m1-auditor", &member(1), "users", None);
    bind(
        out,
        &a,
        "m2-pa-web",
        &member(2),
        "project-admin",
        Some("web"),
    );
    bind(
        out,
        &a,
        "m2-pv-shop",
        &member(2),
        "project-viewer",
        Some("shop"),
    );
    bind(out, &a, "m2-support", &member(2), "support", None);
    bind(
        out,
        &a,
        "m3-deploy-web",
        &member(3),
        "deployer",
        Some("web"),
    );
    bind(
        out,
        &a,
        "m4-notifications",
        &member(4),
        "notifications",
        None,
    );
    if i.is_multiple_of(10) {
        // The one conflict: project-viewer beside project-admin on web (R5).
        bind(
            out,
            &a,
            "m2-pv-web",
            &member(2),
            "project-viewer",
            Some("web"),
        );
    } else {
        bind(out, &a, "m3-stats-shop", &member(3), "stats", Some("shop"));
    }
}

/// Writes the tree for `accounts` accounts under a fresh directory and returns it.
pub fn tree(accounts: usize) -> PathBuf {
    let shape = if teams() { "teams-" } else { "" };
    let dir = std::env::temp_dir().join(format!("rolegate-bench-{shape}{accounts}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("catalog.yaml"), CATALOG).expect("catalog");
    for chunk in 0..accounts.div_ceil(100) {
        let mut out = String::new();
        for i in chunk * 100..((chunk + 1) * 100).min(accounts) {
            account(&mut out, i);
        }
        std::fs::write(dir.join(format!("accounts-{chunk:04}.yaml")), out).expect("accounts");
    }
    dir
}

pub fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
