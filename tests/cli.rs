//! Runs the real `rolegate` binary on files: exit codes, output shapes and line numbers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CATALOG: &str = "\
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: owner}
spec: {scope: Account, permissions: [account.own], owner: true}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: project-admin}
spec: {scope: Project, permissions: [project.manage], includes: [project-viewer], exclusiveGroups: [project-access]}
---
apiVersion: rolegate.dev/v1alpha1
kind: Role
metadata: {name: project-viewer}
spec: {scope: Project, permissions: [project.view], exclusiveGroups: [project-access]}
";

const ACCOUNT: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
data: {a: b}
---
apiVersion: rolegate.dev/v1alpha1
kind: Account
metadata: {name: acme}
spec:
  projects: [{name: web}]
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: alice}
spec: {account: acme}
---
apiVersion: rolegate.dev/v1alpha1
kind: Member
metadata: {name: bob}
spec: {account: acme, type: Service}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: acme-owner}
spec: {account: acme, member: alice, role: owner}
---
apiVersion: rolegate.dev/v1alpha1
kind: RoleBinding
metadata: {name: bob-pv-web}
spec: {account: acme, member: bob, role: project-viewer, project: web}
";

/// A fresh directory under the target dir, with the given files.
fn tree(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn rolegate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let input = stdin.unwrap_or_default().to_owned();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("binary exits")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check(args: &[&str]) -> (i32, String, String) {
    let out = rolegate(&[&["check"], args].concat(), None);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn a_valid_tree_passes_with_exit_0_and_other_kinds_are_ignored() {
    let dir = tree(
        "valid",
        &[
            ("catalog.yaml", CATALOG),
            ("acme/account.yaml", ACCOUNT),
            ("notes.txt", "not yaml: ["),
        ],
    );
    let (code, stdout, stderr) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("checked 8 objects: 0 error(s), 0 warning(s)"),
        "{stderr}"
    );
}

#[test]
fn a_conflict_exits_1_with_file_line_rule_and_object() {
    let conflict = format!(
        "{ACCOUNT}---\n# bob also wants to administer web\napiVersion: rolegate.dev/v1alpha1\nkind: RoleBinding\nmetadata: {{name: bob-pa-web}}\nspec: {{account: acme, member: bob, role: project-admin, project: web}}\n"
    );
    let dir = tree(
        "conflict",
        &[("catalog.yaml", CATALOG), ("account.yaml", &conflict)],
    );
    let file = dir.join("account.yaml");
    let (code, stdout, _) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    // Same timestamps: the name decides, so bob-pa-web (a < v) wins and bob-pv-web loses.
    let expected = format!(
        "{}:27: error[R5] RoleBinding/bob-pv-web: [R5] bob already holds project-admin on project web through binding bob-pa-web; project-viewer and project-admin are exclusive (group project-access)\n",
        file.display()
    );
    assert_eq!(stdout, expected);
}

#[test]
fn json_output_has_the_documented_shape() {
    let missing = ACCOUNT.replace(
        "member: bob, role: project-viewer",
        "member: carol, role: project-viewer",
    );
    let dir = tree(
        "json",
        &[("catalog.yaml", CATALOG), ("account.yaml", &missing)],
    );
    let (code, stdout, _) = check(&["--output", "json", dir.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let diagnostics = report["diagnostics"].as_array().expect("diagnostics array");
    assert_eq!(diagnostics.len(), 1);
    let d = &diagnostics[0];
    assert_eq!(d["rule"], "R16");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], 27);
    assert_eq!(d["kind"], "RoleBinding");
    assert_eq!(d["namespace"], "default");
    assert_eq!(d["name"], "bob-pv-web");
    assert_eq!(d["message"], "[R16] member carol does not exist");
    assert!(
        d["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("account.yaml"))
    );
    assert_eq!(
        report["summary"],
        serde_json::json!({"objects": 8, "errors": 1, "warnings": 0})
    );
}

#[test]
fn an_account_without_owner_is_an_error() {
    let ownerless = ACCOUNT
        .replace("role: owner", "role: project-viewer, project: web")
        .replace("acme-owner", "alice-pv");
    let dir = tree(
        "ownerless",
        &[("catalog.yaml", CATALOG), ("account.yaml", &ownerless)],
    );
    let (code, stdout, _) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            ":6: error[R2] Account/acme: [R2] account acme has no accepted owner binding"
        ),
        "{stdout}"
    );
}

#[test]
fn a_redundant_binding_is_a_warning_with_exit_0() {
    let redundant = format!(
        "{ACCOUNT}---\napiVersion: rolegate.dev/v1alpha1\nkind: RoleBinding\nmetadata: {{name: bob-pv-web-again}}\nspec: {{account: acme, member: bob, role: project-viewer, project: web}}\n"
    );
    let dir = tree(
        "redundant",
        &[("catalog.yaml", CATALOG), ("account.yaml", &redundant)],
    );
    let (code, stdout, _) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout
            .contains(": warning[R9] RoleBinding/bob-pv-web-again: [R9] binding bob-pv-web-again"),
        "{stdout}"
    );
}

#[test]
fn stdin_is_read_with_a_dash() {
    let input = format!("{CATALOG}---\n{ACCOUNT}");
    let out = rolegate(&["check", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let broken = input.replace("role: project-viewer, project: web", "role: project-viewer");
    let out = rolegate(&["check", "-"], Some(&broken));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("<stdin>:42: error[R6] RoleBinding/bob-pv-web:"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn malformed_yaml_exits_2_with_file_and_line() {
    let dir = tree(
        "malformed",
        &[(
            "bad.yaml",
            "apiVersion: rolegate.dev/v1alpha1\nkind: Role\nmetadata: {name: x\nspec: {}\n",
        )],
    );
    let (code, stdout, stderr) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(stderr.contains("bad.yaml:4: error:"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_wrong_enum_value_names_the_field_and_line() {
    let doc = "---\napiVersion: rolegate.dev/v1alpha1\nkind: Member\nmetadata:\n  name: m\nspec:\n  account: acme\n  type: Robot\n";
    let dir = tree("enum", &[("m.yaml", doc)]);
    let (code, _, stderr) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("m.yaml:8: error: Member/m: spec.type: unknown variant `Robot`"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_field_names_the_path_and_line() {
    let doc = "apiVersion: rolegate.dev/v1alpha1\nkind: Account\nmetadata:\n  name: a\nspec:\n  displayName: A\n  projcts: []\n";
    let dir = tree("unknown", &[("a.yaml", doc)]);
    let (code, _, stderr) = check(&[dir.to_str().expect("utf8")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("a.yaml:7: error: Account/a: unknown field spec.projcts"),
        "{stderr}"
    );
}

#[test]
fn unknown_kind_version_duplicates_and_missing_files_exit_2() {
    let kind = "apiVersion: rolegate.dev/v1alpha1\nkind: Group\nmetadata: {name: t}\n";
    let version = "apiVersion: rolegate.dev/v9\nkind: Role\nmetadata: {name: t}\n";
    let dir = tree(
        "unknown-kind",
        &[
            ("k.yaml", kind),
            ("v.yaml", version),
            ("c1.yaml", CATALOG),
            ("c2.yaml", CATALOG),
        ],
    );
    let (code, _, stderr) = check(&[dir.to_str().expect("utf8"), "/nonexistent/path"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("k.yaml:1: error: kind Group does not exist in rolegate.dev"),
        "{stderr}"
    );
    assert!(
        stderr.contains("v.yaml:1: error: apiVersion rolegate.dev/v9 is not served"),
        "{stderr}"
    );
    assert!(
        stderr.contains("c2.yaml:1: error: Role/owner is defined twice (first at"),
        "{stderr}"
    );
    assert!(stderr.contains("/nonexistent/path:"), "{stderr}");
}

#[test]
fn base_judges_transitions_like_the_webhook() {
    let base = tree(
        "base-old",
        &[("catalog.yaml", CATALOG), ("account.yaml", ACCOUNT)],
    );
    let without_owner_binding: String = ACCOUNT
        .split("---\n")
        .filter(|d| !d.contains("acme-owner"))
        .collect::<Vec<_>>()
        .join("---\n");
    let retyped = without_owner_binding.replace(
        "spec: {account: acme, type: Service}",
        "spec: {account: acme, type: User}",
    );
    let head = tree(
        "base-new",
        &[("catalog.yaml", CATALOG), ("account.yaml", &retyped)],
    );
    let (code, stdout, _) = check(&[
        head.to_str().expect("utf8"),
        "--base",
        base.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            "error[R3] RoleBinding/acme-owner: [R3] RoleBinding acme-owner makes alice the owner"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("error[R11] Member/bob: [R11] spec.type is immutable"),
        "{stdout}"
    );
    assert!(stdout.contains("error[R2] Account/acme"), "{stdout}");
    // Without --base only the static findings remain.
    let (_, stdout, _) = check(&[head.to_str().expect("utf8")]);
    assert!(
        !stdout.contains("R3") && !stdout.contains("R11"),
        "{stdout}"
    );
}

#[test]
fn base_prefers_existing_bindings_in_conflicts() {
    let base = tree(
        "age-old",
        &[("catalog.yaml", CATALOG), ("account.yaml", ACCOUNT)],
    );
    let newer = format!(
        "{ACCOUNT}---\napiVersion: rolegate.dev/v1alpha1\nkind: RoleBinding\nmetadata: {{name: bob-pa-web}}\nspec: {{account: acme, member: bob, role: project-admin, project: web}}\n"
    );
    let head = tree(
        "age-new",
        &[("catalog.yaml", CATALOG), ("account.yaml", &newer)],
    );
    let (code, stdout, _) = check(&[
        head.to_str().expect("utf8"),
        "--base",
        base.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("error[R5] RoleBinding/bob-pa-web: [R5] bob already holds project-viewer"),
        "{stdout}"
    );
    assert!(!stdout.contains("RoleBinding/bob-pv-web"), "{stdout}");
}

#[test]
fn crds_and_rules_commands_print() {
    let out = rolegate(&["crds"], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout)
            .matches("kind: CustomResourceDefinition")
            .count(),
        5
    );
    let out = rolegate(&["rules"], None);
    let table = text(&out.stdout);
    assert!(
        table.contains("| R5 | exclusive | `ExclusiveRoleConflict` |"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 20);
    assert!(
        table.contains("`AccountNotFound`, `MemberNotFound`"),
        "{table}"
    );
}

#[test]
fn the_readme_rule_table_is_the_output_of_rolegate_rules() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let table = readme
        .split("<!-- rules:begin -->\n")
        .nth(1)
        .and_then(|rest| rest.split("<!-- rules:end -->").next())
        .expect("README has a rules table");
    let out = rolegate(&["rules"], None);
    assert_eq!(
        table,
        text(&out.stdout),
        "update the README table from `rolegate rules`"
    );
}

#[test]
fn the_shipped_tenant_and_every_preset_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("examples/tenant")];
    let mut presets: Vec<PathBuf> = std::fs::read_dir(root.join("presets"))
        .expect("presets/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    presets.sort();
    assert_eq!(presets.len(), 5, "five products");
    dirs.extend(presets);
    for dir in dirs {
        let (code, stdout, stderr) = check(&[dir.to_str().expect("utf8")]);
        assert_eq!(
            (code, stdout.as_str()),
            (0, ""),
            "{}: {stderr}",
            dir.display()
        );
        assert!(
            stderr.contains("0 error(s), 0 warning(s)"),
            "{}: {stderr}",
            dir.display()
        );
    }
}

#[test]
fn the_broken_example_fires_every_rule_that_check_can_judge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/broken");
    let (head, base) = (root.join("head"), root.join("base"));
    let (code, stdout, _) = check(&[
        "-o",
        "json",
        head.to_str().expect("utf8"),
        "--base",
        base.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let fired: std::collections::BTreeSet<&str> = report["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["rule"].as_str())
        .collect();
    let expected = [
        "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11", "R12", "R16", "R17",
    ];
    assert_eq!(fired, expected.into_iter().collect());
    let warnings: Vec<&str> = report["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| d["severity"] == "warning")
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(warnings, vec!["erin-viewer"]);
}

#[test]
fn check_at_judges_windows_at_an_instant_and_warns_about_expired_bindings() {
    // bob views web until June and administers it from June: no conflict (R5 over windows).
    let windows = format!(
        "{ACCOUNT}---\napiVersion: rolegate.dev/v1alpha1\nkind: RoleBinding\nmetadata: {{name: bob-pa-web}}\nspec: {{account: acme, member: bob, role: project-admin, project: web, validFrom: '2026-06-01T00:00:00Z'}}\n"
    )
    .replace(
        "role: project-viewer, project: web}",
        "role: project-viewer, project: web, validUntil: '2026-06-01T00:00:00Z'}",
    );
    let dir = tree(
        "windows",
        &[("catalog.yaml", CATALOG), ("account.yaml", &windows)],
    );
    let path = dir.to_str().expect("utf8");
    let (code, stdout, stderr) = check(&["--at", "2026-05-01T00:00:00Z", path]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout, "", "nothing has expired in May");
    let (code, stdout, _) = check(&["--at", "2026-06-01T00:00:00Z", path]);
    assert_eq!(code, 0, "an expired binding is a warning, not an error");
    assert!(
        stdout.contains(": warning[R18] RoleBinding/bob-pv-web: [R18] access to project web (role project-viewer) expired for bob at 2026-06-01T00:00:00Z"),
        "{stdout}"
    );
    let (code, _, stderr) = check(&["--at", "next monday", path]);
    assert_eq!(code, 2, "{stderr}");
}
