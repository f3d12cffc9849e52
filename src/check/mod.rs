//! `rolegate check`: judges manifests offline with the same engine the webhook and the controller
//! use, so a pull request fails before it reaches a cluster.
//!
//! It sees the whole desired state, so a dangling reference (R16) and an account without an owner
//! (R2) are errors here. With `--base`, every create, update and delete between the base tree and
//! the new one is also judged exactly as the webhook would judge it from a non-member requester,
//! in the order the API server would see them arrive ([`arrivals`]).

mod github;
mod junit;
mod load;
mod report;
mod sarif;
mod unambiguous;

use std::collections::{BTreeMap, BTreeSet, btree_map};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub use load::{Located, load};
pub use report::{Checked, Diagnostic, Format, Report, Severity, Summary};
pub use sarif::HELP_URI;

use crate::api::{Kind, Object, ObjectRef};
use crate::engine::rules::schema;
use crate::engine::{
    self, AccountKey, Decision, Entry, Finding, Index, Operation, Review, RuleId, Violation,
};

/// What can stop `check` from judging at all: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: error: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: error: {object} is defined twice (first at {first})")]
    Duplicate {
        file: String,
        line: usize,
        object: ObjectRef,
        first: String,
    },
}

/// Input faults rendered for `format`: GitHub annotations for `github`, nothing otherwise (the
/// caller prints every fault to stderr in any format).
pub fn render_errors(errors: &[Error], format: Format) -> String {
    match format {
        Format::Github => github::render_errors(errors),
        _ => String::new(),
    }
}

/// Where an object was written.
type Place = (Arc<str>, usize);

/// Loads one tree, handing each object as `keep` made it to `file` (on this thread, in the order
/// of the paths); returns where each object was written. A second definition of one object is an
/// input error, and the first one read stays.
fn tree<T: Send>(
    paths: &[PathBuf],
    stdin: &mut dyn Read,
    keep: impl Fn(Object) -> T + Sync,
    mut file: impl FnMut(&ObjectRef, T),
    errors: &mut Vec<Error>,
) -> BTreeMap<ObjectRef, Place> {
    let mut places = BTreeMap::new();
    load::load_each(
        paths,
        stdin,
        |found| {
            let key = found.object.object_ref();
            (key, (found.file, found.line), keep(found.object))
        },
        |result| match result {
            Ok((key, place, kept)) => match places.entry(key) {
                btree_map::Entry::Vacant(slot) => {
                    file(slot.key(), kept);
                    slot.insert(place);
                }
                btree_map::Entry::Occupied(first) => {
                    let (first_file, first_line) = first.get();
                    errors.push(Error::Duplicate {
                        file: place.0.to_string(),
                        line: place.1,
                        first: format!("{first_file}:{first_line}"),
                        object: first.key().clone(),
                    });
                }
            },
            Err(e) => errors.push(e),
        },
    );
    places
}

/// Judges the manifests under `paths` at the instant `at` (R18: windows open and close), and the
/// transitions from `bases` when given.
pub fn check(
    paths: &[PathBuf],
    bases: &[PathBuf],
    stdin: &mut dyn Read,
    at: Timestamp,
) -> Result<Report, Vec<Error>> {
    let mut errors = Vec::new();
    if bases.is_empty() {
        // Only the desired state: each object's own CRD rules are judged as it is parsed, and only
        // its slim entry is kept, filed in the index while later files are parsed.
        let mut index = Index::new();
        let mut own = Vec::new();
        let keep = |object: Object| (schema::check(&object, None).err(), Entry::from(object));
        let file = |key: &ObjectRef, (schema, entry): (Option<Violation>, Entry)| {
            index.insert(&key.namespace, stamped_entry(entry, 0));
            if let Some(v) = schema {
                own.push((key.clone(), Finding::error(v)));
            }
        };
        let places = tree(paths, stdin, keep, file, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let findings = evaluated(&index, own, at).into_vec();
        drop_later(index);
        return Ok(report(findings, places, &BTreeMap::new()));
    }
    let (mut head, mut base) = (BTreeMap::new(), BTreeMap::new());
    let places = tree(
        paths,
        stdin,
        |o| o,
        |key, object| {
            head.insert(key.clone(), object);
        },
        &mut errors,
    );
    let base_places = tree(
        bases,
        &mut std::io::empty(),
        |o| o,
        |key, object| {
            base.insert(key.clone(), object);
        },
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    let findings = findings(&head, Some(&base), at);
    Ok(report(findings, places, &base_places))
}

/// Frees a large structure on another thread: the answer need not wait for a few hundred thousand
/// frees (the CLI exits before that thread is done).
fn drop_later<T: Send + 'static>(value: T) {
    // Should the thread not start, the closure and the value with it are dropped right here.
    let _ = std::thread::Builder::new().spawn(move || drop(value));
}

/// The index of the manifests under `paths`, as `check` builds it (objects without a
/// creationTimestamp are the oldest, then by name): what `explain` and `who-can` read offline.
pub fn index_of(paths: &[PathBuf], stdin: &mut dyn Read) -> Result<Index, Vec<Error>> {
    let mut errors = Vec::new();
    let mut index = Index::new();
    let file = |key: &ObjectRef, entry| index.insert(&key.namespace, stamped_entry(entry, 0));
    tree(paths, stdin, Entry::from, file, &mut errors);
    if errors.is_empty() {
        Ok(index)
    } else {
        Err(errors)
    }
}

/// The report of `findings` on the head's objects at `places`, or, for a base object gone from
/// the head, at `base`.
fn report(
    findings: Vec<(ObjectRef, Finding)>,
    places: BTreeMap<ObjectRef, Place>,
    base: &BTreeMap<ObjectRef, Place>,
) -> Report {
    let locate = |object: &ObjectRef| {
        places
            .get(object)
            .or_else(|| base.get(object))
            .map(|(file, line)| (file.to_string(), *line))
    };
    let mut diagnostics: Vec<Diagnostic> = findings
        .into_iter()
        .map(|(object, finding)| {
            let (file, line) = locate(&object).unwrap_or_default();
            Diagnostic {
                violation: finding.violation,
                severity: finding.severity,
                file,
                line,
                object,
            }
        })
        .collect();
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.violation.rule).cmp(&(&b.file, b.line, b.violation.rule))
    });
    let checked = places
        .into_iter()
        .map(|(object, (file, line))| Checked { object, file, line })
        .collect();
    Report::new(diagnostics, checked)
}

/// The second a pull request's new objects are stamped with: after every timestamp the trees
/// carry, so that what is already there is older and wins conflicts (manifests exported from a
/// cluster keep their creationTimestamps; those written by hand are stamped 0).
fn arrival_second<'a>(trees: impl IntoIterator<Item = &'a Object>) -> i64 {
    let newest = trees
        .into_iter()
        .filter_map(|o| o.meta().creation_timestamp.as_ref())
        .map(|t| t.0.as_second())
        .max()
        .unwrap_or(0);
    newest.max(0).saturating_add(1)
}

/// The findings of one account's evaluation, and a warning for each binding whose window closed.
fn account_findings(index: &Index, key: &AccountKey, at: Timestamp) -> Vec<(ObjectRef, Finding)> {
    let eval = engine::evaluate_account(index, key, at);
    let mut out: Vec<(ObjectRef, Finding)> = eval
        .findings()
        .into_iter()
        .map(|(kind, name, finding)| (ObjectRef::new(kind, key.namespace.clone(), name), finding))
        .collect();
    for (name, expired) in eval.expired() {
        out.push((
            ObjectRef::new(Kind::RoleBinding, key.namespace.clone(), name),
            Finding {
                violation: expired.clone(),
                severity: Severity::Warning,
            },
        ));
    }
    out
}

/// `items` in runs of a few hundred, so that handing out work costs little beside doing it.
fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    const RUN: usize = 256;
    let mut out = Vec::with_capacity(items.len().div_ceil(RUN));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(RUN).collect());
    }
    out
}

/// `entry` as the index files it, stamped like [`stamped`].
fn stamped_entry(mut entry: Entry, second: i64) -> Entry {
    let meta = entry.metadata_mut();
    if meta.created().is_none() {
        meta.set_created(Timestamp::from_second(second).ok().map(Time).as_ref());
    }
    entry
}

/// The object with a creationTimestamp: its own, or `second`.
fn stamped(object: &Object, second: i64) -> Object {
    let mut object = object.clone();
    let meta = object.meta_mut();
    if meta.creation_timestamp.is_none() {
        meta.creation_timestamp = Timestamp::from_second(second).ok().map(Time);
    }
    object
}

/// One finding per object and rule; an error outranks a warning of the same rule (a denial under
/// the base's policy is not hidden by the head's milder one).
#[derive(Default)]
struct Findings(BTreeMap<(ObjectRef, RuleId), Finding>);

impl Findings {
    fn add(&mut self, object: ObjectRef, finding: Finding) {
        match self.0.entry((object, finding.violation.rule)) {
            btree_map::Entry::Vacant(v) => {
                v.insert(finding);
            }
            btree_map::Entry::Occupied(mut o) => {
                if o.get().severity == Severity::Warning && finding.severity == Severity::Error {
                    o.insert(finding);
                }
            }
        }
    }

    fn into_vec(self) -> Vec<(ObjectRef, Finding)> {
        self.0
            .into_iter()
            .map(|((object, _), finding)| (object, finding))
            .collect()
    }
}

/// The evaluation of the desired state in `index`, beside each object's own findings (its CRD
/// rules): every account's and every role's. Each account's evaluation stands alone, so both
/// cores share them.
fn evaluated(index: &Index, own: Vec<(ObjectRef, Finding)>, at: Timestamp) -> Findings {
    let mut findings = Findings::default();
    let accounts: Vec<AccountKey> = index
        .accounts()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let account_findings = load::parallel(chunks(accounts), |chunk| {
        chunk
            .into_iter()
            .flat_map(|key| account_findings(index, &key, at))
            .collect::<Vec<_>>()
    });
    for (key, finding) in own
        .into_iter()
        .chain(account_findings.into_iter().flatten())
    {
        findings.add(key, finding);
    }
    for (namespace, name) in index.names(Kind::Role) {
        if let Some(v) = engine::evaluate_role(index, &namespace, &name).and_then(|e| e.problem) {
            findings.add(
                ObjectRef::new(Kind::Role, namespace, name),
                Finding::error(v),
            );
        }
    }
    findings
}

/// Everything `check` finds: the evaluation of the desired state `head` (one finding per object
/// and rule), and, given a `base`, every denial the webhook would give the changes from `base` to
/// `head` as they arrive ([`arrivals`]). Bindings whose window closed before `at` are warned
/// about (R18 `Expired`: dead configuration).
pub fn findings(
    head: &BTreeMap<ObjectRef, Object>,
    base: Option<&BTreeMap<ObjectRef, Object>>,
    at: Timestamp,
) -> Vec<(ObjectRef, Finding)> {
    let mut index = Index::new();
    let arrival = arrival_second(
        head.values()
            .chain(base.into_iter().flat_map(|b| b.values())),
    );
    for (key, object) in head {
        let new = base.is_some_and(|b| !b.contains_key(key));
        index.insert(
            &key.namespace,
            stamped_entry(Entry::from(object), if new { arrival } else { 0 }),
        );
    }
    // Each object's CEL rules stand alone too.
    let objects: Vec<(&ObjectRef, &Object)> = head.iter().collect();
    let own = load::parallel(chunks(objects), |chunk| {
        chunk
            .into_iter()
            .filter_map(|(key, object)| {
                let v = schema::check(object, None).err()?;
                Some((key.clone(), Finding::error(v)))
            })
            .collect::<Vec<_>>()
    });
    let mut findings = evaluated(&index, own.into_iter().flatten().collect(), at);
    if let Some(base) = base {
        for (key, denial) in arrivals(head, base, at) {
            findings.add(key, Finding::error(denial));
        }
    }
    findings.into_vec()
}

/// The changes from `base` to `head` as the API server would see them arrive, each judged by the
/// webhook's own admission from a non-member requester against the state before it: first every
/// create (GitOps tools create before they update), then every update, then every delete (prune
/// last; Accounts first, so an account removed with its owner binding may go). A denied change is
/// not applied. Returns the denials.
pub fn arrivals(
    head: &BTreeMap<ObjectRef, Object>,
    base: &BTreeMap<ObjectRef, Object>,
    at: Timestamp,
) -> Vec<(ObjectRef, Violation)> {
    let mut state = Index::new();
    let arrival = arrival_second(head.values().chain(base.values()));
    for object in base.values() {
        state.apply(stamped(object, 0));
    }
    let mut denials = Vec::new();
    let mut judge = |state: &Index, key: &ObjectRef, review: Review<'_>| match engine::admit(
        state, &review, at,
    ) {
        Decision::Deny(v) => {
            denials.push((key.clone(), v));
            false
        }
        Decision::Allow { .. } => true,
    };
    for (key, new) in head.iter().filter(|(k, _)| !base.contains_key(*k)) {
        // The API server stamps a new object only once admission has let it in.
        let mut arriving = new.clone();
        arriving.meta_mut().creation_timestamp = None;
        if judge(
            &state,
            key,
            review(Operation::Create, Some(&arriving), None),
        ) {
            state.apply(stamped(new, arrival));
        }
    }
    for (key, new) in head {
        let Some(old) = base.get(key).filter(|old| differs(old, new)) else {
            continue;
        };
        let (new, old) = (stamped(new, 0), stamped(old, 0));
        if judge(
            &state,
            key,
            review(Operation::Update, Some(&new), Some(&old)),
        ) {
            state.apply(new);
        }
    }
    let mut gone: Vec<(&ObjectRef, &Object)> = base
        .iter()
        .filter(|(k, _)| !head.contains_key(*k))
        .collect();
    gone.sort_by_key(|(k, _)| (k.kind != Kind::Account, *k));
    for (key, old) in gone {
        let old = stamped(old, 0);
        if judge(&state, key, review(Operation::Delete, None, Some(&old))) {
            state.delete(key.kind, &key.namespace, &key.name);
        }
    }
    denials
}

fn review<'a>(
    operation: Operation,
    object: Option<&'a Object>,
    old_object: Option<&'a Object>,
) -> Review<'a> {
    Review {
        operation,
        object,
        old_object,
        requester: None,
    }
}

/// Whether the desired state changed: spec, labels and annotations; not the synthetic timestamps.
fn differs(old: &Object, new: &Object) -> bool {
    let strip = |o: &Object| {
        o.to_json().ok().map(|mut v| {
            if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("creationTimestamp");
            }
            v
        })
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check` without a base keeps only slim entries and judges each object's CRD rules as it is
    /// parsed; [`findings`] (what the properties drive) judges whole objects. Same findings.
    #[test]
    fn the_streaming_check_finds_what_findings_finds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut judged = 0;
        for dir in [
            "examples/broken/head",
            "examples/agency",
            "examples/tenant",
            "presets/cloud-provider",
            "presets/developer-platform",
            "presets/hosting-panel",
            "presets/hosting-provider",
            "presets/managed-wordpress",
        ] {
            let paths = vec![root.join(dir)];
            let report = match check(&paths, &[], &mut std::io::empty(), Timestamp::UNIX_EPOCH) {
                Ok(report) => report,
                Err(errors) => panic!("{dir}: {errors:?}"),
            };
            let (objects, errors) = load(&paths, &mut std::io::empty());
            assert!(errors.is_empty(), "{dir}: {errors:?}");
            let head: BTreeMap<ObjectRef, Object> = objects
                .into_iter()
                .map(|found| (found.object.object_ref(), found.object))
                .collect();
            let key = |object: &ObjectRef, f: &Finding| {
                (
                    object.clone(),
                    f.violation.rule,
                    f.violation.message.clone(),
                    f.severity,
                )
            };
            let mut expected: Vec<_> = findings(&head, None, Timestamp::UNIX_EPOCH)
                .iter()
                .map(|(o, f)| key(o, f))
                .collect();
            let mut got: Vec<_> = report
                .diagnostics
                .iter()
                .map(|d| {
                    let f = Finding {
                        violation: d.violation.clone(),
                        severity: d.severity,
                    };
                    key(&d.object, &f)
                })
                .collect();
            expected.sort();
            got.sort();
            assert_eq!(got, expected, "{dir}");
            assert_eq!(report.checked.len(), head.len(), "{dir}");
            judged += got.len();
        }
        assert!(judged > 0, "the broken example tree has findings");
    }
}
