//! The real `rolegate check` binary on `kind: List` documents and in its CI output formats
//! (github, sarif, junit): exit codes, and the real file and line in every finding.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A kubectl `get -o yaml` list: a role, an account without owner (R2 at line 12), a ConfigMap
/// (ignored) and a second owner binding (R1 at line 19).
const LIST: &str = "\
# kubectl get rolegate -o yaml
apiVersion: v1
kind: List
metadata:
  resourceVersion: \"\"
items:
- apiVersion: rolegate.dev/v1alpha1
  kind: Role
  metadata: {name: owner, uid: abc, resourceVersion: \"5\"}
  spec: {scope: Account, permissions: [account.own], owner: true}
- apiVersion: rolegate.dev/v1alpha1
  kind: Account
  metadata: {name: acme}
  spec: {projects: [{name: web}]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: other}
- apiVersion: rolegate.dev/v1alpha1
  kind: RoleBinding
  metadata: {name: bob-owner}
  spec: {account: acme, member: bob, role: owner}
";

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

fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .arg("check")
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(line, rule)` of every text diagnostic.
fn lines_and_rules(stdout: &str) -> Vec<(usize, String)> {
    stdout
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, ':');
            let _file = parts.next();
            let line = parts.next().and_then(|n| n.parse().ok()).expect("line");
            let rest = parts.next().expect("rest");
            let rule = rest[rest.find('[').expect("[") + 1..rest.find(']').expect("]")].to_owned();
            (line, rule)
        })
        .collect()
}

#[test]
fn a_kubectl_list_is_read_with_the_line_of_each_item() {
    let dir = tree("list_yaml", &[("list.yaml", LIST)]);
    let (code, out, err) = check(&[dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        lines_and_rules(&out),
        vec![(11, "R2".to_owned()), (18, "R1".to_owned())],
        "{out}"
    );
    assert!(err.contains("checked 3 objects"), "{err}");
}

#[test]
fn a_json_list_is_read_with_the_line_of_each_item() {
    let json = r#"{
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "rolegate.dev/v1alpha1",
            "kind": "Account",
            "metadata": {"name": "acme"},
            "spec": {"projects": []}
        },
        {
            "apiVersion": "rolegate.dev/v1alpha1",
            "kind": "Member",
            "metadata": {"name": "alice"},
            "spec": {"account": "acme"}
        }
    ]
}
"#;
    let dir = tree("list_json", &[("list.json", json)]);
    let (code, out, _) = check(&[dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(lines_and_rules(&out), vec![(5, "R2".to_owned())], "{out}");
}

#[test]
fn a_list_after_other_documents_keeps_file_lines_and_faults_name_the_item() {
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\n---\n{}",
        LIST.replace(
            "spec: {projects: [{name: web}]}",
            "spec: {projects: [{name: web}]}\n  status: {}\n  bogus: 1"
        )
    );
    let dir = tree("list_later", &[("all.yaml", &text)]);
    let (code, out, err) = check(&[dir.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("all.yaml:20: error: Account/acme: unknown field bogus"),
        "{err}"
    );
}

#[test]
fn a_list_of_items_that_is_not_a_sequence_is_a_parse_error_with_a_line() {
    let dir = tree(
        "list_bad",
        &[("l.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n")],
    );
    let (code, _, err) = check(&[dir.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("l.yaml:3: error: kind: List"), "{err}");
}
