//! Reads manifests into typed objects, remembering the file and line of each, the way kubectl
//! would read them: files, directories, multi-document YAML or JSON, and `-` for stdin.
//! Documents of other kinds are skipped: a real GitOps tree holds Deployments too.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use serde::de::DeserializeOwned;

use super::Error;
use super::unambiguous::Unambiguous;
use crate::api::{self, Account, Kind, Member, Object, Role, RoleBinding, Team};

/// An object and where it was written.
#[derive(Clone, Debug)]
pub struct Located {
    pub object: Object,
    /// Shared by every object of one file.
    pub file: Arc<str>,
    pub line: usize,
}

/// Where documents come from, in the order the paths name them.
enum Source {
    Text { name: String, text: String },
    File(PathBuf),
    Fault(Error),
}

/// Loads every path. Collects every fault instead of stopping at the first, so one run shows all.
pub fn load(paths: &[PathBuf], stdin: &mut dyn Read) -> (Vec<Located>, Vec<Error>) {
    let (mut objects, mut errors) = (Vec::new(), Vec::new());
    load_each(
        paths,
        stdin,
        |found| found,
        |result| match result {
            Ok(found) => objects.push(found),
            Err(e) => errors.push(e),
        },
    );
    (objects, errors)
}

/// Loads every path, files in parallel (one thread per core). `keep` turns each object into what
/// the caller keeps of it, on the thread that parsed it; `take` receives that and every fault on
/// the calling thread, in the order of the paths and documents, while later files are parsed.
/// So no more than a file's worth of whole objects exists at a time.
pub(super) fn load_each<T: Send>(
    paths: &[PathBuf],
    stdin: &mut dyn Read,
    keep: impl Fn(Located) -> T + Sync,
    mut take: impl FnMut(Result<T, Error>),
) {
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            sources.push(match stdin.read_to_string(&mut text) {
                Ok(_) => Source::Text {
                    name: "<stdin>".into(),
                    text,
                },
                Err(source) => Source::Fault(Error::Read {
                    path: "<stdin>".into(),
                    source,
                }),
            });
            continue;
        }
        let mut files = Vec::new();
        match collect(path, &mut files) {
            Ok(()) => sources.extend(files.into_iter().map(Source::File)),
            Err(e) => sources.push(Source::Fault(e)),
        }
    }
    let parse = |source| {
        let mut out = Vec::new();
        let mut push = |result: Result<Located, Error>| out.push(result.map(&keep));
        match source {
            Source::Text { name, text } => parse_file(&name.into(), &text, &mut push),
            Source::File(file) => match fs::read_to_string(&file) {
                Ok(text) => parse_file(&file.display().to_string().into(), &text, &mut push),
                Err(source) => push(Err(Error::Read {
                    path: file.display().to_string(),
                    source,
                })),
            },
            Source::Fault(e) => push(Err(e)),
        }
        out
    };
    each(sources, parse, |results| {
        results.into_iter().for_each(&mut take)
    });
}

/// `work` on every item, on as many threads as there are cores; results in the items' order.
pub(super) fn parallel<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    each(items, work, |r| out.push(r));
    out
}

/// `work` on every item, on as many threads as there are cores; `done` receives each result on
/// the calling thread in the items' order, as soon as it and every earlier one are ready.
fn each<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync, mut done: impl FnMut(R)) {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len());
    if threads <= 1 {
        items.into_iter().map(work).for_each(done);
        return;
    }
    let queue = Mutex::new(items.into_iter().enumerate());
    let (results, ready) = mpsc::channel();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (queue, work, results) = (&queue, &work, results.clone());
                scope.spawn(move || {
                    // A poisoned queue means another worker panicked; stop taking work.
                    while let Some((i, item)) = queue.lock().ok().and_then(|mut q| q.next()) {
                        if results.send((i, work(item))).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(results);
        let (mut waiting, mut next) = (BTreeMap::new(), 0);
        for (i, result) in ready {
            waiting.insert(i, result);
            while let Some(result) = waiting.remove(&next) {
                done(result);
                next += 1;
            }
        }
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
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
    file: &'a Arc<str>,
}

/// Splits on `---` lines. A `---` at column 0 always starts a document: block scalars are indented.
fn documents<'a>(file: &'a Arc<str>, text: &str) -> Vec<Document<'a>> {
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

/// Every object and fault of one file, in order, to `out`.
type Out<'a> = dyn FnMut(Result<Located, Error>) + 'a;

fn parse_file(file: &Arc<str>, text: &str, out: &mut Out<'_>) {
    for doc in documents(file, text) {
        parse_document(&doc, out);
    }
}

fn parse_document(doc: &Document<'_>, out: &mut Out<'_>) {
    // Only blank lines and comments: no document (serde-saphyr reads it as null too, but the
    // check is cheaper than a parse).
    if doc
        .text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return;
    }
    // The line of the object: its first line of content, not the blank lines or comments above it.
    let line = doc.first_line
        + doc
            .text
            .lines()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .unwrap_or(0);
    match direct(doc, line) {
        Some(found) => out(Ok(found)),
        None => generic(doc, line, out),
    }
}

/// A document parsed into a generic value first: what decides whether it is ours, and the
/// error when it is not well formed.
fn generic(doc: &Document<'_>, line: usize, out: &mut Out<'_>) {
    let fault = |line: usize, message: String| Error::Parse {
        file: doc.file.to_string(),
        line,
        message,
    };
    let value: serde_json::Value = match serde_saphyr::from_str(&doc.text) {
        Ok(value) => value,
        Err(e) => {
            out(Err(fault(saphyr_line(doc, &e), saphyr_message(&e))));
            return;
        }
    };
    let Some(map) = value.as_object() else {
        return;
    };
    let field = |k: &str| map.get(k).and_then(|v| v.as_str());
    if is_list(field("apiVersion"), field("kind")) {
        return parse_list(doc, out);
    }
    let header = Header {
        api_version: field("apiVersion"),
        kind: field("kind"),
        name: map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str()),
    };
    // The document is parsed once; only a typed fault parses the text again, for its line.
    let typed = |kind, name: &str| -> Result<Object, Error> {
        strict(doc, 0, kind, name, &value, |_: serde_json::Error| line).or_else(|fast| {
            let mut located = Err(fast);
            let _ = serde_saphyr::with_deserializer_from_str_with_options(
                &doc.text,
                typed_yaml(),
                |de| {
                    located = strict(doc, 0, kind, name, de, |e: serde_saphyr::Error| {
                        saphyr_line(doc, &e)
                    });
                    Ok(())
                },
            );
            located
        })
    };
    match object(doc, line, &header, typed) {
        Ok(Some(found)) => out(Ok(found)),
        Ok(None) => {}
        Err(e) => out(Err(e)),
    }
}

/// How YAML text is read straight into a typed object: an unquoted number or boolean is not a
/// string (`account: 123` is an integer to kubectl and the API server rejects it, so must we).
fn typed_yaml() -> serde_saphyr::Options {
    serde_saphyr::options! { no_schema: true }
}

/// The fast way to one of rolegate's objects: the kind read off the document's own top-level
/// `apiVersion:` and `kind:` lines, and the text deserialized straight into the typed object by
/// libyaml (2.3x faster than serde-saphyr on the bench tree), with no generic value in between,
/// through [`Unambiguous`], which fails wherever the two readers could differ. Only plain header
/// lines qualify and only a clean parse counts; anything else (quoting, flow style, JSON, lists,
/// any fault) goes the generic way, which decides and words the error.
fn direct(doc: &Document<'_>, line: usize) -> Option<Located> {
    let header = |key: &str| {
        let mut lines = doc
            .text
            .lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix(':'));
        let value = lines.next()?.trim();
        let plain = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-'));
        (lines.next().is_none() && plain && !value.is_empty()).then_some(value)
    };
    let (group, version) = header("apiVersion")?.split_once('/')?;
    if group != api::GROUP || version != api::VERSION {
        return None;
    }
    let kind = Kind::from_kind(header("kind")?)?;
    if tags_aliases_or_directives(&doc.text) {
        return None;
    }
    let object = clean(
        kind,
        Unambiguous::new(yaml_serde::Deserializer::from_str(&doc.text)),
    )?;
    let named = object.meta().name.as_deref().is_some_and(|n| !n.is_empty());
    named.then(|| Located {
        object,
        file: Arc::clone(doc.file),
        line,
    })
}

/// Whether the text may hold a tag (`!`), an alias (`*name`) or a directive (`%YAML`): where the
/// two readers' rules (tag resolution, alias limits) differ, the strict reader reads alone.
fn tags_aliases_or_directives(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.contains(&b'!')
        || bytes.first() == Some(&b'%')
        || text.contains("\n%")
        || bytes.iter().enumerate().any(|(i, b)| {
            *b == b'*'
                && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'[' | b'{' | b','))
        })
}

/// The object of `kind` when the text parses cleanly: no fault and no field its type does not
/// know. Nothing here words an error (no field paths are tracked); the generic way does that.
fn clean<'de, D: serde::Deserializer<'de>>(kind: Kind, de: D) -> Option<Object> {
    fn parse<'de, T: DeserializeOwned, D: serde::Deserializer<'de>>(de: D) -> Option<T> {
        let mut unknown = false;
        let parsed = serde_ignored::deserialize(de, |path| unknown |= !is_header(&path)).ok()?;
        (!unknown).then_some(parsed)
    }
    Some(match kind {
        Kind::Account => Object::Account(parse(de)?),
        Kind::Member => Object::Member(parse(de)?),
        Kind::Team => Object::Team(parse(de)?),
        Kind::Role => Object::Role(parse(de)?),
        Kind::RoleBinding => Object::RoleBinding(parse(de)?),
    })
}

/// `apiVersion` and `kind` at the top: the derived root reads them through serde's ignore path.
fn is_header(path: &serde_ignored::Path<'_>) -> bool {
    matches!(path, serde_ignored::Path::Map { parent: serde_ignored::Path::Root, key }
        if key == "apiVersion" || key == "kind")
}

/// `kind: List` (kubectl's `get -o yaml` and `kustomize build` output) or a typed `<Kind>List`.
fn is_list(api_version: Option<&str>, kind: Option<&str>) -> bool {
    match (api_version, kind) {
        (Some("v1"), Some("List")) => true,
        (Some(v), Some(k)) => v.starts_with(api::GROUP) && k.ends_with("List"),
        _ => false,
    }
}

/// The items of a list, each with the line it starts on, as serde-saphyr's spans tell it.
#[derive(serde::Deserialize)]
struct ListItems {
    #[serde(default)]
    items: Option<Vec<serde_saphyr::Spanned<serde_json::Value>>>,
}

fn parse_list(doc: &Document<'_>, out: &mut Out<'_>) {
    let list: ListItems = match serde_saphyr::from_str(&doc.text) {
        Ok(list) => list,
        Err(e) => {
            out(Err(Error::Parse {
                file: doc.file.to_string(),
                line: saphyr_line(doc, &e),
                message: format!("kind: List: {}", saphyr_message(&e)),
            }));
            return;
        }
    };
    for item in list.items.unwrap_or_default() {
        let offset = usize::try_from(item.referenced.line())
            .unwrap_or(1)
            .saturating_sub(1);
        let line = doc.first_line + offset;
        let value = item.value;
        let text = |k: &str| value.get(k).and_then(|v| v.as_str());
        let header = Header {
            api_version: text("apiVersion"),
            kind: text("kind"),
            name: value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str()),
        };
        let typed = |kind, name: &str| -> Result<Object, Error> {
            strict(doc, offset, kind, name, &value, |_: serde_json::Error| line)
        };
        match object(doc, line, &header, typed) {
            Ok(Some(found)) => out(Ok(found)),
            Ok(None) => {}
            Err(e) => out(Err(e)),
        }
    }
}

/// What decides whether a document is ours and how to name it in errors.
struct Header<'a> {
    api_version: Option<&'a str>,
    kind: Option<&'a str>,
    name: Option<&'a str>,
}

/// The object a document (or a list item) holds, when it is one of rolegate's kinds.
fn object(
    doc: &Document<'_>,
    line: usize,
    header: &Header<'_>,
    typed: impl FnOnce(Kind, &str) -> Result<Object, Error>,
) -> Result<Option<Located>, Error> {
    let fault = |message: String| Error::Parse {
        file: doc.file.to_string(),
        line,
        message,
    };
    let (Some(api_version), Some(kind)) = (header.api_version, header.kind) else {
        return Ok(None);
    };
    let Some((group, version)) = api_version.split_once('/') else {
        return Ok(None);
    };
    if group != api::GROUP {
        return Ok(None);
    }
    if version != api::VERSION {
        return Err(fault(format!(
            "apiVersion {api_version} is not served: use {}",
            api::API_VERSION
        )));
    }
    let Some(kind) = Kind::from_kind(kind) else {
        return Err(fault(format!(
            "kind {kind} does not exist in {}: expected Account, Member, Team, Role or RoleBinding",
            api::GROUP
        )));
    };
    let object = typed(kind, header.name.unwrap_or("?"))?;
    if object.meta().name.as_deref().is_none_or(str::is_empty) {
        return Err(fault(format!("{kind} has no metadata.name")));
    }
    Ok(Some(Located {
        object,
        file: Arc::clone(doc.file),
        line,
    }))
}

/// Strict typed parse of one object of `kind` from any deserializer.
fn strict<'de, D>(
    doc: &Document<'_>,
    offset: usize,
    kind: Kind,
    name: &str,
    de: D,
    line_of: impl Fn(D::Error) -> usize,
) -> Result<Object, Error>
where
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    Ok(match kind {
        Kind::Account => {
            Object::Account(typed::<Account, D>(doc, offset, kind, name, de, line_of)?)
        }
        Kind::Member => Object::Member(typed::<Member, D>(doc, offset, kind, name, de, line_of)?),
        Kind::Team => Object::Team(typed::<Team, D>(doc, offset, kind, name, de, line_of)?),
        Kind::Role => Object::Role(typed::<Role, D>(doc, offset, kind, name, de, line_of)?),
        Kind::RoleBinding => Object::RoleBinding(typed::<RoleBinding, D>(
            doc, offset, kind, name, de, line_of,
        )?),
    })
}

/// Strict parse: a wrong type, a wrong enum value or an unknown field is an error naming the field.
/// `offset` is the line, within the document, where the object starts (0 but for list items).
fn typed<'de, T: DeserializeOwned, D>(
    doc: &Document<'_>,
    offset: usize,
    kind: Kind,
    name: &str,
    de: D,
    line_of: impl Fn(D::Error) -> usize,
) -> Result<T, Error>
where
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    let mut unknown = Vec::new();
    let fault = |line: usize, message: String| Error::Parse {
        file: doc.file.to_string(),
        line,
        message: format!("{kind}/{name}: {message}"),
    };
    let mut ignored = |path: serde_ignored::Path<'_>| {
        if !is_header(&path) {
            unknown.push(path.to_string());
        }
    };
    // The path of a fault (`spec.type`) comes from serde_path_to_error, its line from the parser.
    let parsed: T =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut ignored))
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let message = strip_location(&saphyr_plain(&inner.to_string()));
                let message = if path == "." {
                    message
                } else {
                    format!("{path}: {message}")
                };
                fault(line_of(inner), message)
            })?;
    if let Some(path) = unknown.first() {
        return Err(fault(
            line_of_key(doc, offset, path),
            format!("unknown field {path}"),
        ));
    }
    Ok(parsed)
}

/// The line of a field named by a dotted path: the first line, in order, that holds each segment's key.
fn line_of_key(doc: &Document<'_>, offset: usize, path: &str) -> usize {
    let lines: Vec<&str> = doc.text.lines().collect();
    let mut at = offset;
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

/// The file line of a serde-saphyr fault.
fn saphyr_line(doc: &Document<'_>, e: &serde_saphyr::Error) -> usize {
    e.location()
        .and_then(|l| usize::try_from(l.line()).ok())
        .map_or(doc.first_line, |l| doc.first_line + l.max(1) - 1)
}

/// serde-saphyr's message without its source snippet and its `error: line L column C: ` prefix
/// (the line is reported separately; the column is relative to the document).
fn saphyr_message(e: &serde_saphyr::Error) -> String {
    saphyr_plain(&e.without_snippet().to_string())
}

/// The first line of a message, without serde-saphyr's `error: line L column C: ` prefix.
fn saphyr_plain(text: &str) -> String {
    let text = text.lines().next().unwrap_or_default();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let text = match text.strip_prefix("line ") {
        Some(rest) => rest.split_once(": ").map_or(rest, |(_, m)| m),
        None => text,
    };
    strip_location(text)
}

/// Messages of the typed parse may end in ` at line L column C`; the line is reported separately.
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
        let file: Arc<str> = "f".into();
        let docs = documents(&file, "a: 1\n---\n# c\nb: 2\n---\nc: 3\n");
        let starts: Vec<usize> = docs.iter().map(|d| d.first_line).collect();
        assert_eq!(starts, vec![1, 2, 5]);
        assert_eq!(docs[1].text.lines().nth(2), Some("b: 2"));
    }

    /// Every document of the shipped trees, and documents written to trip the fast path.
    fn samples() -> Vec<String> {
        let mut texts = Vec::new();
        for dir in ["examples", "presets"] {
            let mut files = Vec::new();
            collect(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).as_path(),
                &mut files,
            )
            .expect("shipped tree");
            texts.extend(
                files
                    .iter()
                    .map(|f| fs::read_to_string(f).expect("readable")),
            );
        }
        let head = "apiVersion: rolegate.dev/v1alpha1\nkind: Member\nmetadata:\n  name: m\n";
        for spec in [
            "spec: {account: a, type: User}",
            "spec: {account: 123, type: User}",
            "spec: {account: true, type: User}",
            "spec: {account: a, type: User, email: 1e3}",
            "spec: {account: \"123\", type: User}",
            "spec: {account: a, type: User, typo: 1}",
            "spec: {account: a, type: Nobody}",
            "spec: {account: a, account: b, type: User}",
            "spec: {account: ~, type: User}",
            "spec:\n  account: a # a comment\n  type: User",
            "spec: {account: yes, type: User}",
            "spec: {account: 'a', type: \"User\"}",
            "spec: {account: '', type: User}",
            "spec: {account: !!str 123, type: User}",
            "spec: {account: &x a, email: *x, type: User}",
            "spec: {account: .inf, type: User}",
            "spec: {account: 2026-01-01, type: User}",
            "spec: {account: a, type: User, email: |\n    x@y.example\n  }",
            "spec:\n  account: a\n  type: User\n  email: >-\n    x@y.example",
            "  labels: {a: v, a: w}\nspec: {account: a, type: User}",
            "  labels: {a: v, b: '1'}\nspec: {account: a, type: User}",
            "  labels: {a: v, b: yes}\nspec: {account: a, type: User}",
            "  labels: {<<: {a: v}}\nspec: {account: a, type: User}",
        ] {
            texts.push(format!("{head}{spec}\n"));
        }
        texts.push("kind: Member # ours\napiVersion: rolegate.dev/v1alpha1\nmetadata: {name: m}\nspec: {account: a, type: User}\n".into());
        texts.push("apiVersion: rolegate.dev/v1alpha1\nkind: Role\nmetadata: {name: r}\nspec: {scope: Account, default: yes, permissions: [a.b]}\n".into());
        texts.push("apiVersion: rolegate.dev/v1alpha1\nkind: Role\nmetadata: {name: r}\nspec: {scope: Account, default: 1, permissions: [a.b]}\n".into());
        texts.push("apiVersion: rolegate.dev/v1alpha1\nkind: Role\nmetadata: {name: 7}\nspec: {scope: Account, permissions: [1]}\n".into());
        texts
    }

    #[test]
    fn the_fast_path_takes_only_what_the_generic_path_accepts_and_reads_it_the_same() {
        let file: Arc<str> = "f".into();
        let (mut taken, mut total) = (0, 0);
        for text in samples() {
            for doc in documents(&file, &text) {
                total += 1;
                let Some(fast) = direct(&doc, doc.first_line) else {
                    continue;
                };
                taken += 1;
                let mut slow = Vec::new();
                generic(&doc, doc.first_line, &mut |r| slow.push(r));
                match slow.as_slice() {
                    [Ok(found)] => assert_eq!(found.object, fast.object, "{}", doc.text),
                    other => panic!(
                        "fast path took what the generic path gives as {other:?}: {}",
                        doc.text
                    ),
                }
            }
        }
        // The shipped trees are plain YAML: the fast path must be taking most of them.
        assert!(
            taken * 2 > total,
            "fast path took {taken} of {total} documents"
        );
    }

    /// A scalar as a manifest may spell it: words YAML readers type differently, and any short
    /// text, written plain or quoted.
    fn scalar() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let word = prop_oneof![
            prop::sample::select(vec![
                "a",
                "yes",
                "No",
                "on",
                "y",
                "~",
                "null",
                "true",
                "1",
                "0x1F",
                "1e3",
                ".inf",
                "nan",
                "2026-01-01",
                "a b",
                "a:b",
                "-",
                "a#b",
                "",
            ])
            .prop_map(str::to_owned),
            "[a-z0-9.~@ -]{0,6}",
        ];
        (word, 0..3_u8).prop_map(|(w, quote)| match quote {
            0 => w,
            1 => format!("'{w}'"),
            _ => format!("{w:?}"),
        })
    }

    proptest::proptest! {
        /// Whatever the fast path takes, the strict reader reads alike: the fast path may only
        /// be faster, never differently right.
        #[test]
        fn the_fast_path_agrees_with_the_strict_reader(
            account in scalar(), email in scalar(), label in scalar(), flow in proptest::bool::ANY,
        ) {
            let text = if flow {
                format!("apiVersion: rolegate.dev/v1alpha1\nkind: Member\nmetadata: {{name: m, labels: {{k: {label}}}}}\nspec: {{account: {account}, type: User, email: {email}}}\n")
            } else {
                format!("apiVersion: rolegate.dev/v1alpha1\nkind: Member\nmetadata:\n  name: m\n  labels:\n    k: {label}\nspec:\n  account: {account}\n  type: User\n  email: {email}\n")
            };
            let file: Arc<str> = "f".into();
            for doc in documents(&file, &text) {
                let Some(fast) = direct(&doc, doc.first_line) else { continue };
                let mut slow = Vec::new();
                generic(&doc, doc.first_line, &mut |r| slow.push(r));
                match slow.as_slice() {
                    [Ok(found)] => proptest::prop_assert_eq!(&found.object, &fast.object),
                    other => proptest::prop_assert!(false, "fast path took {:?}, strict gives {other:?}", doc.text),
                }
            }
        }
    }

    #[test]
    fn an_unquoted_number_or_boolean_is_not_a_string() {
        let file: Arc<str> = "f".into();
        for value in ["123", "true", "1e3", "0x1F"] {
            let text = format!(
                "apiVersion: rolegate.dev/v1alpha1\nkind: Member\nmetadata:\n  name: m\nspec:\n  type: User\n  account: {value}\n"
            );
            let mut out = Vec::new();
            parse_file(&file, &text, &mut |r| out.push(r));
            match out.as_slice() {
                [
                    Err(Error::Parse {
                        line: 7, message, ..
                    }),
                ] => {
                    assert!(message.starts_with("Member/m: spec.account: "), "{message}")
                }
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn line_of_key_follows_the_path() {
        let doc = Document {
            text: "kind: Role\nspec:\n  scope: Account\n  typo: 1\n".into(),
            first_line: 10,
            file: &"f".into(),
        };
        assert_eq!(line_of_key(&doc, 0, "spec.typo"), 13);
    }
}
