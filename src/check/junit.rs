//! `--output junit`: JUnit XML as CI systems (GitLab, Jenkins, Azure DevOps) show test reports:
//! one test suite per file, one test case per object checked; a case with an error fails and
//! carries every diagnostic of its object, warnings go to the case's `system-out`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{Diagnostic, Report};
use crate::api::ObjectRef;
use crate::check::Severity;

pub fn render(report: &Report) -> String {
    // file -> (line, object) -> diagnostics; objects without findings pass.
    let mut files: BTreeMap<&str, BTreeMap<(usize, &ObjectRef), Vec<&Diagnostic>>> =
        BTreeMap::new();
    for c in &report.checked {
        files
            .entry(&*c.file)
            .or_default()
            .entry((c.line, &c.object))
            .or_default();
    }
    for d in &report.diagnostics {
        files
            .entry(d.file.as_str())
            .or_default()
            .entry((d.line, &d.object))
            .or_default()
            .push(d);
    }
    let failed = |ds: &Vec<&Diagnostic>| ds.iter().any(|d| d.severity == Severity::Error);
    let tests: usize = files.values().map(BTreeMap::len).sum();
    let failures: usize = files
        .values()
        .map(|cases| cases.values().filter(|ds| failed(ds)).count())
        .sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"rolegate check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    );
    for (file, cases) in &files {
        let suite_failures = cases.values().filter(|ds| failed(ds)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{suite_failures}\" errors=\"0\" skipped=\"0\">",
            escape(file),
            cases.len()
        );
        for ((line, object), diagnostics) in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{line}\"",
                escape(&format!("{}.{}", object.namespace, object.kind)),
                escape(&format!("{object}")),
                escape(file),
            );
            if diagnostics.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            let text = |ds: &mut dyn Iterator<Item = &&Diagnostic>| -> String {
                ds.map(|d| {
                    format!(
                        "{}:{}: {}[{}] {}: {}",
                        d.file,
                        d.line,
                        d.severity.as_str(),
                        d.violation.rule,
                        d.object,
                        d.violation.message
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
            };
            let errors: Vec<&&Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            if let Some(first) = errors.first() {
                let rules: Vec<&str> = errors.iter().map(|d| d.violation.rule.id()).collect();
                let _ = writeln!(
                    out,
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                    escape(&rules.join(",")),
                    escape(&first.violation.message),
                    escape(&text(&mut errors.iter().copied()))
                );
            }
            let warnings: Vec<&&Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .collect();
            if !warnings.is_empty() {
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    escape(&text(&mut warnings.iter().copied()))
                );
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// XML text and attribute escaping; control characters XML 1.0 cannot hold are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
