//! `--output sarif`: SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps): one rule
//! descriptor per rule id from the rule table, one result per finding with its real region.

use serde_json::{Value, json};

use super::report::Report;
use crate::check::Severity;
use crate::engine::RuleId;

/// Where each rule is documented: the rule table of the README.
pub const HELP_URI: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "#rules");

pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = RuleId::ALL.iter().map(|r| descriptor(*r)).collect();
    let results: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| {
            let rule_index = RuleId::ALL
                .iter()
                .position(|r| *r == d.violation.rule)
                .unwrap_or_default();
            json!({
                "ruleId": d.violation.rule.id(),
                "ruleIndex": rule_index,
                "level": level(d.severity),
                "message": {"text": d.violation.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&d.file)},
                        "region": {"startLine": d.line.max(1)},
                    },
                    "logicalLocations": [{
                        "name": d.object.name,
                        "fullyQualifiedName": format!(
                            "{}/{}/{}", d.object.namespace, d.object.kind, d.object.name
                        ),
                        "kind": "object",
                    }],
                }],
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rolegate",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    // A tree of plain strings and numbers always serializes.
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

fn descriptor(rule: RuleId) -> Value {
    let reasons: Vec<&str> = rule.reasons().iter().map(|r| r.as_str()).collect();
    let full = if reasons.is_empty() {
        format!(
            "{}: {} (a behaviour, never a finding)",
            rule.id(),
            rule.summary()
        )
    } else {
        format!(
            "{}: {}. Condition reason: {}.",
            rule.id(),
            rule.summary(),
            reasons.join(", ")
        )
    };
    json!({
        "id": rule.id(),
        "name": rule.slug(),
        "shortDescription": {"text": rule.slug()},
        "fullDescription": {"text": full},
        "helpUri": HELP_URI,
        "help": {"text": rule.summary()},
        "defaultConfiguration": {"level": "error"},
    })
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A file path as a URI reference: relative paths stay relative (code scanning resolves them
/// against the checkout), absolute ones become `file://` URIs; reserved bytes are escaped.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if path.starts_with('/') {
        format!("file://{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri("deploy/a b.yaml"), "deploy/a%20b.yaml");
        assert_eq!(uri("/tmp/x.yaml"), "file:///tmp/x.yaml");
        assert_eq!(uri("<stdin>"), "%3Cstdin%3E");
    }
}
