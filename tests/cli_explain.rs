//! `rolegate explain` and `rolegate who-can` on the real binary, on every preset: answers read
//! off the preset's comments and roles, JSON shapes and exit codes (0 yes, 1 no, 2 bad question).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// A directory shipped with the project: `presets/<name>` or `examples/<name>`.
fn shipped(kind: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(name)
}

fn preset(name: &str) -> PathBuf {
    shipped("presets", name)
}

fn rolegate(args: &[&str], path: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(args)
        .arg(path)
        .output()
        .expect("runs rolegate")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("json output")
}

/// The members `who-can --output json` lists.
fn who_can(preset_name: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["who-can", "-o", "json"];
    all.extend_from_slice(args);
    let out = rolegate(&all, &preset(preset_name));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    json(&out)["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["member"].as_str().expect("member").to_owned())
        .collect()
}

#[test]
fn hosting_panel_answers_yes_and_no_like_can_i() {
    let dir = preset("hosting-panel");
    // walt is bound to hosting-web on www only.
    let yes = rolegate(
        &[
            "explain",
            "walt",
            "--permission",
            "hosting.web.manage",
            "--project",
            "www-example-com",
        ],
        &dir,
    );
    assert_eq!(yes.status.code(), Some(0));
    let text = stdout(&yes);
    assert!(text.starts_with("yes: walt may hosting.web.manage on project www-example-com\n"));
    assert!(
        text.contains("through binding walt-web-www: role hosting-web\n"),
        "{text}"
    );
    let no = rolegate(
        &[
            "explain",
            "walt",
            "--permission",
            "hosting.web.manage",
            "--project",
            "shop-example-com",
        ],
        &dir,
    );
    assert_eq!(no.status.code(), Some(1));
    assert!(stdout(&no).starts_with("no: walt may not hosting.web.manage"));
}

#[test]
fn hosting_panel_team_grant_reaches_every_hosting_through_includes() {
    let out = rolegate(
        &[
            "explain",
            "ann",
            "--permission",
            "hosting.web.manage",
            "--project",
            "www-example-com",
            "-o",
            "json",
        ],
        &preset("hosting-panel"),
    );
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["member"], "ann");
    assert_eq!(v["account"], "agency-client");
    assert_eq!(v["owner"], false);
    let through = &v["answer"]["through"];
    assert_eq!(through.as_array().map(Vec::len), Some(1));
    let t = &through[0];
    assert_eq!(t["binding"], "web-agency-customer-admin");
    assert_eq!(t["team"], "web-agency");
    assert_eq!(t["implicit"], true, "account-level grant on a project: R15");
    assert_eq!(
        t["chain"],
        serde_json::json!(["customer-admin", "hosting-admin", "hosting-web"])
    );
}

#[test]
fn hosting_panel_who_can_pass_permissions_on_the_shop() {
    // The owner (customer-owner includes customer-admin), the agency team (customer-admin) and
    // mona (hosting Admin on the shop only).
    assert_eq!(
        who_can(
            "hosting-panel",
            &["permissions.manage", "--project", "shop-example-com"]
        ),
        ["ann", "ben", "mona", "tina"]
    );
    assert_eq!(
        who_can(
            "hosting-panel",
            &["permissions.manage", "--project", "www-example-com"]
        ),
        ["ann", "ben", "tina"]
    );
    let table = rolegate(
        &[
            "who-can",
            "permissions.manage",
            "--project",
            "shop-example-com",
        ],
        &preset("hosting-panel"),
    );
    let text = stdout(&table);
    assert!(text.contains("MEMBER"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("mona ") && l.contains("mona-admin-shop")),
        "{text}"
    );
}

#[test]
fn cloud_provider_scopes_are_separate() {
    let dir = preset("cloud-provider");
    // pat is Viewer on analytics, Administrator on web, nothing at account level.
    let at_analytics = rolegate(
        &[
            "explain",
            "pat",
            "--permission",
            "project.infrastructure.view",
            "--project",
            "analytics",
        ],
        &dir,
    );
    assert_eq!(at_analytics.status.code(), Some(0));
    assert!(stdout(&at_analytics).contains("through binding pat-project-viewer-analytics"));
    let at_account = rolegate(
        &[
            "explain",
            "pat",
            "--permission",
            "project.infrastructure.view",
        ],
        &dir,
    );
    assert_eq!(at_account.status.code(), Some(1));
    assert_eq!(who_can("cloud-provider", &["account.close"]), ["olivia"]);
}

#[test]
fn developer_platform_default_role_is_a_path() {
    let out = rolegate(
        &["explain", "devin", "-o", "json"],
        &preset("developer-platform"),
    );
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["defaulted"], true);
    let paths = v["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0]["default"], true);
    assert_eq!(paths[0]["role"], "dev");
    assert_eq!(paths[0]["binding"], Value::Null);
    assert!(
        who_can("developer-platform", &["platform.user-pat.register"]).contains(&"devin".into())
    );
    // sara's team binding is at the payments workspace.
    let sara = rolegate(
        &["explain", "sara", "-o", "json"],
        &preset("developer-platform"),
    );
    let v = json(&sara);
    assert!(
        v["paths"]
            .as_array()
            .expect("paths")
            .iter()
            .any(|p| p["team"] == "payments-team"
                && p["binding"] == "payments-team-workspace"
                && p["project"] == "payments"),
        "{v}"
    );
}

#[test]
fn managed_wordpress_includes_chains() {
    // carla: company-owner; andre: company-admin > company-developer > site-admin >
    // site-developer; dana: company-developer > ...; sid and staging-deployer: site-developer on
    // the shop.
    assert_eq!(
        who_can(
            "managed-wordpress",
            &["site.staging.manage", "--project", "shop"]
        ),
        ["andre", "carla", "dana", "sid", "staging-deployer"]
    );
    let out = rolegate(
        &["explain", "andre", "-o", "json"],
        &preset("managed-wordpress"),
    );
    let v = json(&out);
    let reached = v["paths"][0]["reached"].as_array().expect("reached");
    assert!(reached.iter().any(|r| r["role"] == "company-billing"
        && r["chain"] == serde_json::json!(["company-admin", "company-billing"])));
}

#[test]
fn hosting_provider_personas() {
    // Billing is held by emil and bill through their billing bindings, and by olga through
    // owner > billing.
    assert_eq!(
        who_can("hosting-provider", &["billing.invoices.view"]),
        ["bill", "emil", "olga"]
    );
    let out = rolegate(
        &[
            "explain",
            "olga",
            "--permission",
            "billing.invoices.view",
            "-o",
            "json",
        ],
        &preset("hosting-provider"),
    );
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["owner"], true);
    assert_eq!(
        v["answer"]["through"][0]["chain"],
        serde_json::json!(["owner", "billing"])
    );
}

const R5_TREE: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: owner}
spec: {scope: Account, permissions: [account.own], owner: true}
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
kind: Account
metadata: {name: acme}
spec: {projects: [{name: web}]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: olga}
spec: {account: acme, type: User, email: olga@acme.example}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: bob}
spec: {account: acme, type: User, email: bob@acme.example}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: acme-owner}
spec: {account: acme, member: olga, role: owner}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: a-bob-viewer, creationTimestamp: '2026-01-01T00:00:00Z'}
spec: {account: acme, member: bob, role: project-viewer, project: web}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: b-bob-admin, creationTimestamp: '2026-02-01T00:00:00Z'}
spec: {account: acme, member: bob, role: project-admin, project: web}
";

#[test]
fn refused_grant_names_rule_and_winner() {
    let dir = std::env::temp_dir().join(format!("rolegate-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("tree.yaml");
    std::fs::write(&file, R5_TREE).expect("write");
    let out = rolegate(
        &[
            "explain",
            "bob",
            "--permission",
            "project.manage",
            "--project",
            "web",
            "-o",
            "json",
        ],
        &file,
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["answer"]["allowed"], false);
    let refused = v["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["binding"], "b-bob-admin");
    assert_eq!(refused[0]["rule"], "R5");
    assert_eq!(refused[0]["winner"], "a-bob-viewer");
    let table = rolegate(
        &[
            "explain",
            "bob",
            "--permission",
            "project.manage",
            "--project",
            "web",
        ],
        &file,
    );
    let text = stdout(&table);
    assert!(text.contains("refused b-bob-admin: [R5]"), "{text}");
    assert!(text.contains("NOT RECEIVED"), "{text}");
    // Bad questions: exit 2 with the name in the message.
    let unknown = rolegate(&["explain", "zed"], &file);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("zed"));
    let project = rolegate(&["who-can", "project.view", "--project", "nope"], &file);
    assert_eq!(project.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&project.stderr).contains("project nope"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_judges_time_windows_at_the_instant_asked() {
    let dir = shipped("examples", "agency");
    // dana-support starts at 2030-01-07T08:00:00Z: refused under R18 before, held after.
    let before = rolegate(
        &[
            "explain",
            "dana",
            "--at",
            "2030-01-01T00:00:00Z",
            "-o",
            "json",
        ],
        &dir,
    );
    assert_eq!(before.status.code(), Some(0), "{}", stdout(&before));
    let refused = json(&before)["refused"].clone();
    assert_eq!(refused[0]["binding"], "dana-support");
    assert_eq!(refused[0]["rule"], "R18");
    // `explain --permission` answers like `kubectl auth can-i`: exit 0 yes, 1 no.
    let can = |at: &str| {
        let args = [
            "explain",
            "dana",
            "--at",
            at,
            "--permission",
            "tickets.view",
        ];
        rolegate(&args, &dir).status.code()
    };
    assert_eq!(can("2030-01-01T00:00:00Z"), Some(1));
    assert_eq!(can("2030-01-08T00:00:00Z"), Some(0));

    // The agency team's admin grant shows when it ends; its expired audit grant is not received.
    let bob = rolegate(
        &[
            "explain",
            "bob",
            "--at",
            "2030-04-01T00:00:00Z",
            "-o",
            "json",
        ],
        &dir,
    );
    let e = json(&bob);
    assert_eq!(e["paths"][0]["binding"], "web-agency-admin-shop");
    assert_eq!(e["paths"][0]["validUntil"], "2030-07-01T00:00:00Z");
    assert_eq!(e["refused"][0]["binding"], "web-agency-audit-shop");
    assert_eq!(e["refused"][0]["rule"], "R18");
    let who = rolegate(
        &[
            "who-can",
            "project.manage",
            "--project",
            "shop",
            "--at",
            "2030-08-01T00:00:00Z",
            "-o",
            "json",
        ],
        &dir,
    );
    assert_eq!(json(&who)["members"], serde_json::json!([]));
}

/// Paths are shown by scope and binding name, not in the evaluation's oldest-first order: a
/// cluster's bindings carry creation times that manifests do not, and `explain --cluster` must
/// give the offline answer.
#[test]
fn paths_do_not_depend_on_creation_order() {
    let dir = std::env::temp_dir().join(format!("rolegate-explain-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let source = preset("hosting-provider");
    std::fs::copy(source.join("roles.yaml"), dir.join("roles.yaml")).expect("roles");
    // Newest first by name: dev-support is the oldest, dev-domains the newest.
    let account = std::fs::read_to_string(source.join("example-account.yaml")).expect("account");
    let stamped = [
        ("dev-support", "2026-01-01T00:00:00Z"),
        ("dev-stacks", "2026-02-01T00:00:00Z"),
        ("dev-domains", "2026-03-01T00:00:00Z"),
    ]
    .iter()
    .fold(account, |text, (name, at)| {
        text.replace(
            &format!("metadata: {{name: {name}}}"),
            &format!("metadata: {{name: {name}, creationTimestamp: \"{at}\"}}"),
        )
    });
    std::fs::write(dir.join("example-account.yaml"), stamped).expect("write");
    let out = rolegate(&["explain", "dev", "-o", "json"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let bindings: Vec<String> = json(&out)["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .filter_map(|p| p["binding"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(bindings, ["dev-domains", "dev-stacks", "dev-support"]);
}
