//! Rendering diagnostics: `file:line: error[R5] Kind/name: message`, the JSON shape of
//! DESIGN.md that pipelines parse, or a CI format (`github`, `sarif`, `junit`: own modules).

use std::fmt::Write as _;

use serde::Serialize;

use crate::api::ObjectRef;
pub use crate::engine::Severity;
use crate::engine::Violation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// GitHub Actions workflow commands (annotations on the pull request).
    Github,
    /// SARIF 2.1.0 (code scanning).
    Sarif,
    /// JUnit XML (CI test reports).
    Junit,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub violation: Violation,
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub object: ObjectRef,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub objects: usize,
    pub errors: usize,
    pub warnings: usize,
}

/// An object that was judged, and where it was written.
#[derive(Clone, Debug)]
pub struct Checked {
    pub object: ObjectRef,
    pub file: std::sync::Arc<str>,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
    /// Every object of the desired state, with or without findings (JUnit's test cases).
    pub checked: Vec<Checked>,
    pub summary: Summary,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    rule: &'a str,
    severity: Severity,
    file: &'a str,
    line: usize,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    diagnostics: Vec<JsonDiagnostic<'a>>,
    summary: Summary,
}

impl Report {
    pub fn new(diagnostics: Vec<Diagnostic>, checked: Vec<Checked>) -> Self {
        let objects = checked.len();
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let summary = Summary {
            objects,
            errors,
            warnings: diagnostics.len() - errors,
        };
        Self {
            diagnostics,
            checked,
            summary,
        }
    }

    /// 0 without errors (warnings allowed), 1 with any error.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.summary.errors > 0)
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.text(),
            Format::Json => self.json(),
            Format::Github => super::github::render(self),
            Format::Sarif => super::sarif::render(self),
            Format::Junit => super::junit::render(self),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            let _ = writeln!(
                out,
                "{}:{}: {}[{}] {}: {}",
                d.file,
                d.line,
                d.severity.as_str(),
                d.violation.rule,
                d.object,
                d.violation.message
            );
        }
        out
    }

    fn json(&self) -> String {
        let report = JsonReport {
            diagnostics: self
                .diagnostics
                .iter()
                .map(|d| JsonDiagnostic {
                    rule: d.violation.rule.id(),
                    severity: d.severity,
                    file: &d.file,
                    line: d.line,
                    kind: d.object.kind.as_str(),
                    namespace: &d.object.namespace,
                    name: &d.object.name,
                    message: &d.violation.message,
                })
                .collect(),
            summary: self.summary,
        };
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    }

    /// One line for stderr: what was judged and what was found.
    pub fn summary_line(&self) -> String {
        let s = self.summary;
        format!(
            "checked {} objects: {} error(s), {} warning(s)",
            s.objects, s.errors, s.warnings
        )
    }
}
