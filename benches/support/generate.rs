//! A realistic tree for benchmarks: N accounts over one shared catalog, each with 2 projects, 5
//! members (User, Service, Subscriber) and 10 bindings, one account in ten with an R5 conflict.
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

/// One account's objects: 1 Account, 5 Members, 10 RoleBindings.
pub fn account(out: &mut String, i: usize) {
    let a = format!("acct-{i}");
    doc(
        out,
        "Account",
        &a,
        &format!(
            "{{displayName: Account {i}, projects: [{{name: web}}, {{name: shop}}], memberAdminPermission: members.manage}}"
        ),
    );
    let types = ["User", "User", "User", "Service", "Subscriber"];
    for (m, t) in types.iter().enumerate() {
        doc(
            out,
            "Member",
            &format!("{a}-m{m}"),
            &format!("{{account: {a}, type: {t}, email: m{m}@{a}.example}}"),
        );
    }
    let bind = |out: &mut String, name: &str, member: usize, role: &str, project: Option<&str>| {
        let project = project
            .map(|p| format!(", project: {p}"))
            .unwrap_or_default();
        doc(
            out,
            "RoleBinding",
            &format!("{a}-{name}"),
            &format!("{{account: {a}, member: {a}-m{member}, role: {role}{project}}}"),
        );
    };
    bind(out, "owner", 0, "owner", None);
    bind(out, "m1-billing", 1, "billing", None);
    bind(out, "m1-support", 1, "support", None);
    bind(out, "m1-auditor", 1, "users", None);
    bind(out, "m2-pa-web", 2, "project-admin", Some("web"));
    bind(out, "m2-pv-shop", 2, "project-viewer", Some("shop"));
    bind(out, "m2-support", 2, "support", None);
    bind(out, "m3-deploy-web", 3, "deployer", Some("web"));
    bind(out, "m4-notifications", 4, "notifications", None);
    if i.is_multiple_of(10) {
        // The one conflict: project-viewer beside project-admin on web (R5).
        bind(out, "m2-pv-web", 2, "project-viewer", Some("web"));
    } else {
        bind(out, "m3-stats-shop", 3, "stats", Some("shop"));
    }
}

/// Writes the tree for `accounts` accounts under a fresh directory and returns it.
pub fn tree(accounts: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rolegate-bench-{accounts}"));
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
