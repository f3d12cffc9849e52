//! Reads manifests into typed objects, remembering the file and line of each, the way kubectl
//! would read them: files, directories, multi-document YAML or JSON, and `-` for stdin.
//! Documents of other kinds are skipped: a real GitOps tree holds Deployments too.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::Error;
use crate::api::{self, Account, Kind, Member, Object, Role, RoleBinding, Team};

/// An object and where it was written.
#[derive(Clone, Debug)]
pub struct Located {
    pub object: Object,
    pub file: String,
    pub line: usize,
}

/// Loads every path. Collects every fault instead of stopping at the first, so one run shows all.
pub fn load(paths: &[PathBuf], stdin: &mut dyn Read) -> (Vec<Located>, Vec<Error>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            match stdin.read_to_string(&mut text) {
                Ok(_) => parse_file("<stdin>", &text, &mut objects, &mut errors),
                Err(source) => errors.push(Error::Read {
                    path: "<stdin>".into(),
                    source,
                }),
            }
            continue;
        }
        let mut files = Vec::new();
        if let Err(e) = collect(path, &mut files) {
            errors.push(e);
            continue;
        }
        for file in files {
            match fs::read_to_string(&file) {
                Ok(text) => parse_file(
                    &file.display().to_string(),
                    &text,
                    &mut objects,
                    &mut errors,
                ),
                Err(source) => errors.push(Error::Read {
                    path: file.display().to_string(),
                    source,
                }),
            }
        }
    }
    (objects, errors)
}

/// Manifest files under `path`, sorted so output is stable.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let read_err = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    if !meta.is_dir() {
        out.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() {
            collect(&entry, out)?;
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(entry);
        }
    }
    Ok(())
}

/// One YAML document and the 1-based line it starts on.
struct Document<'a> {
    text: String,
    first_line: usize,
    file: &'a str,
}

/// Splits on `---` lines. A `---` at column 0 always starts a document: block scalars are indented.
fn documents<'a>(file: &'a str, text: &str) -> Vec<Document<'a>> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker || line == "..." {
            docs.push(Document {
                text: std::mem::take(&mut current),
                first_line,
                file,
            });
            first_line = i + 1;
            // Keep line numbers aligned: the marker line becomes an empty line of the next document.
            current.push('\n');
            if let Some(rest) = line.strip_prefix("---").filter(|r| !r.trim().is_empty()) {
                current.pop();
                current.push_str(rest);
                current.push('\n');
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push(Document {
        text: current,
        first_line,
        file,
    });
    docs
}

fn parse_file(file: &str, text: &str, objects: &mut Vec<Located>, errors: &mut Vec<Error>) {
    for doc in documents(file, text) {
        match parse_document(&doc) {
            Ok(Some(found)) => objects.push(found),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
}

fn parse_document(doc: &Document<'_>) -> Result<Option<Located>, Error> {
    let fault = |line: usize, message: String| Error::Parse {
        file: doc.file.to_owned(),
        line,
        message,
    };
    let value: serde_yaml::Value = serde_yaml::from_str(&doc.text).map_err(|e| {
        let line = e
            .location()
            .map_or(doc.first_line, |l| doc.first_line + l.line() - 1);
        fault(line, strip_location(&e.to_string()))
    })?;
    let Some(map) = value.as_mapping() else {
        return Ok(None);
    };
    // The line of the object: its first line of content, not the blank lines or comments above it.
    let line = doc.first_line
        + doc
            .text
            .lines()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .unwrap_or(0);
    let field = |k: &str| map.get(k).and_then(|v| v.as_str());
    let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
        return Ok(None);
    };
    let Some((group, version)) = api_version.split_once('/') else {
        return Ok(None);
    };
    if group != api::GROUP {
        return Ok(None);
    }
    if version != api::VERSION {
        return Err(fault(
            line,
            format!(
                "apiVersion {api_version} is not served: use {}",
                api::API_VERSION
            ),
        ));
    }
    let Some(kind) = Kind::from_kind(kind) else {
        return Err(fault(
            line,
            format!(
                "kind {kind} does not exist in {}: expected Account, Member, Role or RoleBinding",
                api::GROUP
            ),
        ));
    };
    // The name for error messages comes from the document already parsed above.
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("?");
    let object = match kind {
        Kind::Account => Object::Account(typed::<Account>(doc, kind, name)?),
        Kind::Member => Object::Member(typed::<Member>(doc, kind, name)?),
        Kind::Team => Object::Team(typed::<Team>(doc, kind, name)?),
        Kind::Role => Object::Role(typed::<Role>(doc, kind, name)?),
        Kind::RoleBinding => Object::RoleBinding(typed::<RoleBinding>(doc, kind, name)?),
    };
    if object.meta().name.as_deref().is_none_or(str::is_empty) {
        return Err(fault(line, format!("{kind} has no metadata.name")));
    }
    Ok(Some(Located {
        object,
        file: doc.file.to_owned(),
        line,
    }))
}

/// Strict parse: a wrong type, a wrong enum value or an unknown field is an error naming the field.
fn typed<T: DeserializeOwned>(doc: &Document<'_>, kind: Kind, name: &str) -> Result<T, Error> {
    let mut unknown = Vec::new();
    let fault = |line: usize, message: String| Error::Parse {
        file: doc.file.to_owned(),
        line,
        message: format!("{kind}/{name}: {message}"),
    };
    let de = serde_yaml::Deserializer::from_str(&doc.text);
    // The derived root reads apiVersion and kind itself, through serde's ignore path.
    let known = ["apiVersion", "kind"];
    let parsed: T = serde_ignored::deserialize(de, |path| {
        let path = path.to_string();
        if !known.contains(&path.as_str()) {
            unknown.push(path);
        }
    })
    .map_err(|e| {
        let line = e
            .location()
            .map_or(doc.first_line, |l| doc.first_line + l.line() - 1);
        fault(line, strip_location(&e.to_string()))
    })?;
    if let Some(path) = unknown.first() {
        return Err(fault(
            line_of_key(doc, path),
            format!("unknown field {path}"),
        ));
    }
    Ok(parsed)
}

/// The line of a field named by a dotted path: the first line, in order, that holds each segment's key.
fn line_of_key(doc: &Document<'_>, path: &str) -> usize {
    let lines: Vec<&str> = doc.text.lines().collect();
    let mut at = 0;
    for segment in path
        .split('.')
        .filter(|s| s.parse::<usize>().is_err() && *s != "?")
    {
        let key = |l: &str| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&format!("{segment}:")) || t.starts_with(&format!("\"{segment}\":"))
        };
        if let Some(offset) = lines.iter().skip(at).position(|l| key(l)) {
            at += offset;
        }
    }
    doc.first_line + at
}

/// serde_yaml appends ` at line L column C`; the line is reported separately.
fn strip_location(message: &str) -> String {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_first_line() {
        let docs = documents("f", "a: 1\n---\n# c\nb: 2\n---\nc: 3\n");
        let starts: Vec<usize> = docs.iter().map(|d| d.first_line).collect();
        assert_eq!(starts, vec![1, 2, 5]);
        assert_eq!(docs[1].text.lines().nth(2), Some("b: 2"));
    }

    #[test]
    fn line_of_key_follows_the_path() {
        let doc = Document {
            text: "kind: Role\nspec:\n  scope: Account\n  typo: 1\n".into(),
            first_line: 10,
            file: "f",
        };
        assert_eq!(line_of_key(&doc, "spec.typo"), 13);
    }
}
