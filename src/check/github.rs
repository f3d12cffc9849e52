//! `--output github`: GitHub Actions workflow commands, so each finding is an annotation on the
//! pull request's diff at its real file and line.
//! <https://docs.github.com/actions/reference/workflow-commands-for-github-actions>

use std::fmt::Write as _;

use super::Error;
use super::report::Report;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        let _ = writeln!(
            out,
            "::{} file={},line={},title={}::{}: {}",
            d.severity.as_str(),
            property(&d.file),
            d.line,
            property(&format!("{} {}", d.violation.rule, d.violation.rule.slug())),
            data(&d.object.to_string()),
            data(&d.violation.message),
        );
    }
    out
}

/// Input faults (exit code 2) as annotations too, where they have a file and line.
pub fn render_errors(errors: &[Error]) -> String {
    let mut out = String::new();
    for e in errors {
        let (file, line, message) = match e {
            Error::Parse {
                file,
                line,
                message,
            } => (file.as_str(), *line, message.clone()),
            Error::Duplicate {
                file,
                line,
                object,
                first,
            } => (
                file.as_str(),
                *line,
                format!("{object} is defined twice (first at {first})"),
            ),
            Error::Read { path, source } => {
                let _ = writeln!(
                    out,
                    "::error file={},title=rolegate::{}",
                    property(path),
                    data(&source.to_string())
                );
                continue;
            }
        };
        let _ = writeln!(
            out,
            "::error file={},line={line},title=rolegate::{}",
            property(file),
            data(&message)
        );
    }
    out
}

/// Escaping of a command's message.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of a command's property value: also `:` and `,`.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_would_end_a_property_or_a_line() {
        assert_eq!(property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        assert_eq!(data("a:b,c\r\n"), "a:b,c%0D%0A");
    }
}
