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

use std::collections::{BTreeMap, BTreeSet, btree_map};
use std::io::Read;
use std::path::PathBuf;

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

/// Judges the manifests under `paths` at the instant `at` (R18: windows open and close), and the
/// transitions from `bases` when given.
pub fn check(
    paths: &[PathBuf],
    bases: &[PathBuf],
    stdin: &mut dyn Read,
    at: Timestamp,
) -> Result<Report, Vec<Error>> {
    let (head, mut errors) = load(paths, stdin);
    let (base, base_errors) = if bases.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        load(bases, &mut std::io::empty())
    };
    errors.extend(base_errors);
    let head = unique(head, &mut errors);
    let base = unique(base, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(judge(head, &base, !bases.is_empty(), at))
}

/// The index of the manifests under `paths`, as `check` builds it (objects without a
/// creationTimestamp are the oldest, then by name): what `explain` and `who-can` read offline.
pub fn index_of(paths: &[PathBuf], stdin: &mut dyn Read) -> Result<Index, Vec<Error>> {
    let (objects, mut errors) = load(paths, stdin);
    let objects = unique(objects, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut index = Index::new();
    for (key, found) in objects {
        index.insert(&key.namespace, stamped_entry(&found.object, 0));
    }
    Ok(index)
}

/// Objects by reference; a second definition of one object is an input error. Sorts positions,
/// not objects, and builds the map from sorted input: each object moves once.
fn unique(objects: Vec<Located>, errors: &mut Vec<Error>) -> BTreeMap<ObjectRef, Located> {
    let keys: Vec<ObjectRef> = objects.iter().map(|f| f.object.object_ref()).collect();
    let mut order: Vec<usize> = (0..objects.len()).collect();
    // Stable: of two definitions the first one read stays, the later one is the duplicate.
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let mut slots: Vec<Option<Located>> = objects.into_iter().map(Some).collect();
    let mut keys: Vec<Option<ObjectRef>> = keys.into_iter().map(Some).collect();
    let mut out: Vec<(ObjectRef, Located)> = Vec::with_capacity(order.len());
    for i in order {
        let (Some(key), Some(found)) = (keys[i].take(), slots[i].take()) else {
            continue;
        };
        if let Some((first_key, first)) = out.last()
            && *first_key == key
        {
            errors.push(Error::Duplicate {
                file: found.file.clone(),
                line: found.line,
                object: key,
                first: format!("{}:{}", first.file, first.line),
            });
            continue;
        }
        out.push((key, found));
    }
    // Already sorted and unique: `collect` builds the tree in one pass.
    out.into_iter().collect()
}

fn judge(
    head: BTreeMap<ObjectRef, Located>,
    base: &BTreeMap<ObjectRef, Located>,
    with_base: bool,
    at: Timestamp,
) -> Report {
    // The head's objects move into the map the engine reads; only their places stay here.
    let (places, head_objects): (BTreeMap<_, _>, BTreeMap<_, _>) = head
        .into_iter()
        .map(|(key, found)| ((key.clone(), (found.file, found.line)), (key, found.object)))
        .unzip();
    let base_objects = with_base.then(|| {
        base.iter()
            .map(|(k, f)| (k.clone(), f.object.clone()))
            .collect::<BTreeMap<_, _>>()
    });
    let findings = findings(&head_objects, base_objects.as_ref(), at);
    drop(head_objects);
    let locate = |object: &ObjectRef| {
        places
            .get(object)
            .cloned()
            .or_else(|| base.get(object).map(|f| (f.file.clone(), f.line)))
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

/// The slim entry of `object` as the index files it, stamped like [`stamped`].
fn stamped_entry(object: &Object, second: i64) -> Entry {
    let mut entry = Entry::from(object);
    let meta = entry.metadata_mut();
    if meta.creation_timestamp.is_none() {
        meta.creation_timestamp = Timestamp::from_second(second).ok().map(Time);
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
            stamped_entry(object, if new { arrival } else { 0 }),
        );
    }
    let mut findings: BTreeMap<(ObjectRef, RuleId), Finding> = BTreeMap::new();
    // One finding per object and rule; an error outranks a warning of the same rule (a denial
    // under the base's policy is not hidden by the head's milder one).
    let mut add = |object: ObjectRef, finding: Finding| {
        let slot = findings.entry((object, finding.violation.rule));
        match slot {
            btree_map::Entry::Vacant(v) => {
                v.insert(finding);
            }
            btree_map::Entry::Occupied(mut o) => {
                if o.get().severity == Severity::Warning && finding.severity == Severity::Error {
                    o.insert(finding);
                }
            }
        }
    };
    // Each object's CEL rules and each account's evaluation stand alone: both cores share them.
    let objects: Vec<(&ObjectRef, &Object)> = head.iter().collect();
    let schema_findings = load::parallel(chunks(objects), |chunk| {
        chunk
            .into_iter()
            .filter_map(|(key, object)| {
                let v = schema::check(object, None).err()?;
                Some((key.clone(), Finding::error(v)))
            })
            .collect::<Vec<_>>()
    });
    let accounts: Vec<AccountKey> = index
        .accounts()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let account_findings = load::parallel(chunks(accounts), |chunk| {
        chunk
            .into_iter()
            .flat_map(|key| account_findings(&index, &key, at))
            .collect::<Vec<_>>()
    });
    for (key, finding) in schema_findings
        .into_iter()
        .chain(account_findings)
        .flatten()
    {
        add(key, finding);
    }
    for (namespace, name) in index.names(Kind::Role) {
        if let Some(v) = engine::evaluate_role(&index, &namespace, &name).and_then(|e| e.problem) {
            add(
                ObjectRef::new(Kind::Role, namespace, name),
                Finding::error(v),
            );
        }
    }
    if let Some(base) = base {
        for (key, denial) in arrivals(head, base, at) {
            add(key, Finding::error(denial));
        }
    }
    findings
        .into_iter()
        .map(|((object, _), finding)| (object, finding))
        .collect()
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
