//! `rolegate run`'s log lines as a cluster reads them: on standard error, without colour codes
//! when that is a file or a pipe, and one JSON object a line with `--log-format json`.

use std::process::{Command, Output};

/// `rolegate run` with no cluster to reach: it logs why and exits non-zero.
fn run_without_a_cluster(extra: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("rolegate-run-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["run", "--no-webhook", "--metrics-addr", "127.0.0.1:0"])
        .args(extra)
        .env("KUBECONFIG", dir.join("no-such-kubeconfig"))
        .env("HOME", &dir)
        .env("RUST_LOG", "info")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("NO_COLOR")
        .current_dir(&dir)
        .output()
        .expect("rolegate runs")
}

#[test]
fn text_logs_to_a_pipe_have_no_escape_codes() {
    let out = run_without_a_cluster(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR") && stderr.contains("rolegate run failed"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "escape codes in {stderr:?}");
    assert!(out.stdout.is_empty(), "logs belong on standard error");
}

#[test]
fn json_logs_are_one_object_a_line() {
    let out = run_without_a_cluster(&["--log-format", "json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let failed = lines
        .iter()
        .find(|l| l["message"] == "rolegate run failed")
        .unwrap_or_else(|| panic!("no failure line in {stderr}"));
    assert_eq!(failed["level"], "ERROR");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    assert!(failed["timestamp"].is_string() && failed["target"].is_string());
}
