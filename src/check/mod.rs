//! `rolegate check`: judges manifests offline with the same engine the webhook and the controller
//! use, so a pull request fails before it reaches a cluster.
//!
//! It sees the whole desired state, so a dangling reference (R16) and an account without an owner
//! (R2) are errors here. With `--base`, every create, update and delete between the base tree and
//! the new one is also judged exactly as the webhook would judge it from a non-member requester.

mod load;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub use load::{Located, load};
pub use report::{Diagnostic, Format, Report, Severity, Summary};

use crate::api::{Object, ObjectRef, RedundantPolicy};
use crate::engine::rules::schema;
use crate::engine::{self, Decision, Index, Operation, Review, RuleId, Violation};

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

/// The rules only a change between two states can break.
const TRANSITION_RULES: [RuleId; 4] = [RuleId::R3, RuleId::R4, RuleId::R10, RuleId::R11];

/// Judges the manifests under `paths`, and the transitions from `bases` when given.
pub fn check(
    paths: &[PathBuf],
    bases: &[PathBuf],
    stdin: &mut dyn Read,
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
    Ok(judge(head, &base, !bases.is_empty()))
}

/// Objects by reference; a second definition of one object is an input error.
fn unique(objects: Vec<Located>, errors: &mut Vec<Error>) -> BTreeMap<ObjectRef, Located> {
    let mut out: BTreeMap<ObjectRef, Located> = BTreeMap::new();
    for found in objects {
        let key = found.object.object_ref();
        if let Some(first) = out.get(&key) {
            errors.push(Error::Duplicate {
                file: found.file.clone(),
                line: found.line,
                object: key,
                first: format!("{}:{}", first.file, first.line),
            });
            continue;
        }
        out.insert(key, found);
    }
    out
}

fn judge(
    mut head: BTreeMap<ObjectRef, Located>,
    base: &BTreeMap<ObjectRef, Located>,
    with_base: bool,
) -> Report {
    if with_base {
        // Objects already in the base tree are older than new ones, so conflicts go to what is there.
        for (key, found) in head.iter_mut() {
            let meta = found.object.meta_mut();
            if meta.creation_timestamp.is_none() {
                let second = i64::from(!base.contains_key(key));
                meta.creation_timestamp = Timestamp::from_second(second).ok().map(Time);
            }
        }
    }
    let mut index = Index::new();
    for found in head.values() {
        index.apply(found.object.clone());
    }
    let mut findings: BTreeMap<(ObjectRef, RuleId), (Violation, Severity)> = BTreeMap::new();
    let mut add = |object: ObjectRef, violation: Violation, severity: Severity| {
        findings
            .entry((object, violation.rule))
            .or_insert((violation, severity));
    };

    for found in head.values() {
        if let Err(v) = schema::check(&found.object, None) {
            add(found.object.object_ref(), v, Severity::Error);
        }
    }
    let accounts: BTreeSet<_> = index.accounts().collect();
    for key in &accounts {
        let eval = engine::evaluate_account(&index, key);
        let policy = index
            .namespace(&key.namespace)
            .and_then(|ns| ns.account(&key.account))
            .map(|a| a.spec.redundant_bindings);
        let at = |kind, name: &str| ObjectRef::new(kind, key.namespace.clone(), name);
        for problem in &eval.problems {
            add(
                at(crate::api::Kind::Account, &key.account),
                problem.clone(),
                Severity::Error,
            );
        }
        for (name, verdict) in &eval.bindings {
            if let Err(v) = &verdict.accepted {
                add(
                    at(crate::api::Kind::RoleBinding, name),
                    v.clone(),
                    Severity::Error,
                );
            }
            if let Some(v) = &verdict.redundant {
                let severity = if policy == Some(RedundantPolicy::Deny) {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                add(at(crate::api::Kind::RoleBinding, name), v.clone(), severity);
            }
        }
        for (name, verdict) in &eval.members {
            if let Some(v) = &verdict.problem {
                add(
                    at(crate::api::Kind::Member, name),
                    v.clone(),
                    Severity::Error,
                );
            }
        }
    }
    for (namespace, name) in index
        .roles()
        .map(|(ns, r)| (ns.to_owned(), r.metadata.name.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
    {
        if let Some(v) = engine::evaluate_role(&index, &namespace, &name).and_then(|e| e.problem) {
            add(
                ObjectRef::new(crate::api::Kind::Role, namespace, name),
                v,
                Severity::Error,
            );
        }
    }
    if with_base {
        // The static evaluation above already judges every combination, with base objects older;
        // the webhook adds what only a transition can break.
        for (key, review) in transitions(&head, base) {
            match engine::admit(&index, &review) {
                Decision::Deny(v) if TRANSITION_RULES.contains(&v.rule) => {
                    add(key, v, Severity::Error)
                }
                _ => {}
            }
        }
    }

    let locate = |object: &ObjectRef| {
        head.get(object)
            .or_else(|| base.get(object))
            .map(|f| (f.file.clone(), f.line))
    };
    let mut diagnostics: Vec<Diagnostic> = findings
        .into_iter()
        .map(|((object, _), (violation, severity))| {
            let (file, line) = locate(&object).unwrap_or_default();
            Diagnostic {
                violation,
                severity,
                file,
                line,
                object,
            }
        })
        .collect();
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.violation.rule).cmp(&(&b.file, b.line, b.violation.rule))
    });
    Report::new(diagnostics, head.len())
}

/// Every create, update and delete from `base` to `head`, as admission reviews.
fn transitions<'a>(
    head: &'a BTreeMap<ObjectRef, Located>,
    base: &'a BTreeMap<ObjectRef, Located>,
) -> Vec<(ObjectRef, Review<'a>)> {
    let review = |operation, object: Option<&'a Object>, old_object: Option<&'a Object>| Review {
        operation,
        object,
        old_object,
        requester: None,
    };
    let mut out = Vec::new();
    for (key, new) in head {
        match base.get(key) {
            None => out.push((
                key.clone(),
                review(Operation::Create, Some(&new.object), None),
            )),
            Some(old) if differs(&old.object, &new.object) => out.push((
                key.clone(),
                review(Operation::Update, Some(&new.object), Some(&old.object)),
            )),
            Some(_) => {}
        }
    }
    for (key, old) in base.iter().filter(|(k, _)| !head.contains_key(*k)) {
        out.push((
            key.clone(),
            review(Operation::Delete, None, Some(&old.object)),
        ));
    }
    out
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
