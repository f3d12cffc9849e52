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

fn broken(format: &str) -> (i32, String, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let head = format!("{root}/examples/broken/head");
    let base = format!("{root}/examples/broken/base");
    check(&[&head, "--base", &base, "--output", format])
}

/// `(file, line, rule)` of every text diagnostic of the broken example.
fn broken_text() -> Vec<(String, usize, String)> {
    let (code, out, _) = broken("text");
    assert_eq!(code, 1);
    out.lines()
        .map(|l| {
            let mut parts = l.splitn(3, ':');
            let file = parts.next().expect("file").to_owned();
            let line = parts.next().and_then(|n| n.parse().ok()).expect("line");
            let rest = parts.next().expect("rest");
            let rule = rest[rest.find('[').expect("[") + 1..rest.find(']').expect("]")].to_owned();
            (file, line, rule)
        })
        .collect()
}

/// The line is where an object starts in that file: its `apiVersion` (or a list item's dash).
fn starts_an_object(file: &str, line: usize) -> bool {
    let text = std::fs::read_to_string(file).expect("finding names a real file");
    text.lines().nth(line - 1).is_some_and(|l| {
        let t = l.trim_start();
        t.starts_with("apiVersion:") || t.starts_with("- apiVersion:") || t.starts_with('{')
    })
}

#[test]
fn github_output_annotates_the_real_file_and_line_of_every_finding() {
    let expected = broken_text();
    let (code, out, _) = broken("github");
    assert_eq!(code, 1);
    let mut seen = Vec::new();
    for l in out.lines() {
        let (level, rest) = l
            .strip_prefix("::error ")
            .map(|r| ("error", r))
            .or_else(|| l.strip_prefix("::warning ").map(|r| ("warning", r)))
            .unwrap_or_else(|| panic!("not a workflow command: {l}"));
        let (props, message) = rest.split_once("::").expect("message");
        let props: std::collections::BTreeMap<&str, &str> = props
            .split(',')
            .map(|p| p.split_once('=').expect("key=value"))
            .collect();
        let file = props["file"].to_owned();
        let line: usize = props["line"].parse().expect("line number");
        let rule = props["title"].split(' ').next().expect("rule").to_owned();
        assert!(starts_an_object(&file, line), "{file}:{line} ({l})");
        assert!(message.contains(&format!("[{rule}]")), "{l}");
        assert_eq!(
            level == "warning",
            rule == "R9" && message.contains("erin"),
            "{l}"
        );
        seen.push((file, line, rule));
    }
    assert_eq!(seen, expected);
    assert!(expected.len() >= 20, "the broken example fires many rules");
}

#[test]
fn github_output_carries_list_item_lines_and_input_faults() {
    let dir = tree("github_list", &[("list.yaml", LIST)]);
    let (code, out, _) = check(&[dir.to_str().expect("utf-8"), "-o", "github"]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out
        .lines()
        .map(|l| l.split(',').nth(1).expect("line property"))
        .collect();
    assert_eq!(lines, vec!["line=11", "line=18"], "{out}");

    let dir = tree("github_fault", &[("bad.yaml", "a: 1\nb: [\n")]);
    let (code, out, err) = check(&[dir.to_str().expect("utf-8"), "-o", "github"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.starts_with("::error file="), "{out}");
    assert!(out.contains("bad.yaml,line="), "{out}");
    assert!(!err.is_empty(), "faults still go to stderr");
}

#[test]
fn sarif_output_has_one_descriptor_per_rule_and_a_real_region_per_finding() {
    let expected = broken_text();
    let (code, out, _) = broken("sarif");
    assert_eq!(code, 1);
    let log: serde_json::Value = serde_json::from_str(&out).expect("SARIF is JSON");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let ids: Vec<&str> = rules
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    let want: Vec<&str> = rolegate::engine::RuleId::ALL
        .iter()
        .map(|r| r.id())
        .collect();
    assert_eq!(ids, want);
    for (rule, d) in rolegate::engine::RuleId::ALL.iter().zip(rules) {
        assert_eq!(d["name"], rule.slug());
        assert!(
            d["fullDescription"]["text"]
                .as_str()
                .expect("text")
                .contains(rule.summary())
        );
        assert_eq!(d["helpUri"], rolegate::check::HELP_URI);
    }
    let mut seen = Vec::new();
    for r in run["results"].as_array().expect("results") {
        let index = r["ruleIndex"].as_u64().expect("index") as usize;
        assert_eq!(rules[index]["id"], r["ruleId"]);
        let location = &r["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().expect("uri");
        let file = uri
            .strip_prefix("file://")
            .expect("absolute paths are file URIs");
        let line = location["region"]["startLine"].as_u64().expect("line") as usize;
        assert!(starts_an_object(file, line), "{file}:{line}");
        let level = r["level"].as_str().expect("level");
        assert!(level == "error" || level == "warning");
        seen.push((
            file.to_owned(),
            line,
            r["ruleId"].as_str().expect("id").to_owned(),
        ));
    }
    assert_eq!(seen, expected);
}

#[test]
fn sarif_of_a_clean_tree_has_no_results_and_exit_0() {
    let tenant = format!("{}/examples/tenant", env!("CARGO_MANIFEST_DIR"));
    let (code, out, _) = check(&[&tenant, "-o", "sarif"]);
    assert_eq!(code, 0);
    let log: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
}

#[test]
fn junit_output_has_one_case_per_object_and_failures_carry_the_diagnostics() {
    let expected = broken_text();
    let (code, out, err) = broken("junit");
    assert_eq!(code, 1);
    assert!(out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    let objects: usize = err
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("summary line");
    // One case per object of the desired state, plus the objects only the base holds whose
    // deletion is denied (they are judged too).
    let deleted: std::collections::BTreeSet<&(String, usize, String)> = expected
        .iter()
        .filter(|(f, _, _)| f.contains("/base/"))
        .collect();
    let cases = out.matches("<testcase ").count();
    assert_eq!(cases, objects + deleted.len(), "{out}");
    let (_, json, _) = broken("json");
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let failing: std::collections::BTreeSet<(String, u64)> = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["file"].as_str().expect("file").to_owned(),
                d["line"].as_u64().expect("line"),
            )
        })
        .collect();
    let failures = out.matches("<failure ").count();
    assert_eq!(failures, failing.len(), "{out}");
    assert!(out.contains(&format!("failures=\"{failures}\"")));
    for (file, line, rule) in &expected {
        let text = format!("{file}:{line}: ");
        assert!(out.contains(&text), "{text} missing");
        assert!(out.contains(&format!("[{rule}]")));
    }
    assert!(
        out.contains("<system-out>"),
        "the R9 warning is reported, not failed"
    );
}

#[test]
fn parser_faults_point_at_their_cause() {
    let dir = tree(
        "parser_faults",
        &[
            (
                "dup.yaml",
                "apiVersion: rolegate.dev/v1alpha1\nkind: Member\nmetadata: {name: m}\nspec: {account: a}\nspec: {account: b}\n",
            ),
            (
                "open.yaml",
                "apiVersion: rolegate.dev/v1alpha1\nkind: Role\nmetadata: {name: r}\nspec:\n  permissions: [a\n",
            ),
        ],
    );
    let (code, _, err) = check(&[dir.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("dup.yaml:5: error: duplicate mapping key: spec"),
        "{err}"
    );
    assert!(
        err.contains("open.yaml:5: error: unclosed bracket '['"),
        "{err}"
    );
}
