//! The rules a single object can check on its own (R10 locked, R11 immutable, and the shape of
//! owner and default roles) live as CEL `x-kubernetes-validations` in the CRDs, so the API server
//! enforces them even without the webhook. `check` and the webhook evaluate the very same CEL from
//! the generated schema: the rule text and its message exist once, in `crate::api`.

use kube::core::cel::{CompiledSchema, SchemaFormat, Validator, compile_schema};
use serde_json::Value;

use crate::api::{self, Kind, Object};
use crate::engine::rule::{Reason, RuleId, Violation};

/// One kind's rules, compiled twice: all of them for an update, and without the transition rules
/// (those reading `oldSelf`, which never run on create) for a create.
struct KindRules {
    kind: Kind,
    all: Vec<Entry>,
    creation: Vec<Entry>,
}

/// A shallowest schema node that carries rules, and the JSON path to it. Validating each entry on
/// its own is what the API server's walk from the root does there (a rule sees only `self` and
/// `oldSelf`), without converting the levels above to CEL: admission is a hot path.
struct Entry {
    path: Vec<String>,
    schema: CompiledSchema,
}

struct Schemas {
    validator: Validator,
    kinds: Vec<KindRules>,
}

thread_local! {
    // Compiled once per thread: `Validator` is not `Sync`.
    static SCHEMAS: Schemas = Schemas {
        validator: Validator::new(),
        kinds: Kind::ALL.into_iter().zip(api::crds()).filter_map(|(kind, crd)| {
            let schema = crd.spec.versions.first()?.schema.as_ref()?.open_api_v3_schema.as_ref()?;
            let schema = serde_json::to_value(schema).ok()?;
            let mut creation = compile_schema(&schema);
            strip_transition_rules(&mut creation);
            Some(KindRules {
                kind,
                all: entries(compile_schema(&schema), Vec::new()),
                creation: entries(creation, Vec::new()),
            })
        }).collect(),
    };
}

fn strip_transition_rules(node: &mut CompiledSchema) {
    node.validations.retain(|r| {
        r.as_ref().map_or(true, |c| {
            !c.is_transition_rule || c.rule.optional_old_self == Some(true)
        })
    });
    for child in node.properties.values_mut() {
        strip_transition_rules(child);
    }
    for child in nested_mut(node) {
        strip_transition_rules(child);
    }
}

/// The schemas under `node` other than its properties: array items, map values and the
/// `allOf`/`oneOf`/`anyOf` branches. The walk reaches these whatever keys the value has.
fn nested(node: &CompiledSchema) -> impl Iterator<Item = &CompiledSchema> {
    let branches = node.all_of.iter().chain(&node.one_of).chain(&node.any_of);
    let containers = node.items.iter().chain(&node.additional_properties);
    containers.map(|b| &**b).chain(branches)
}

fn nested_mut(node: &mut CompiledSchema) -> impl Iterator<Item = &mut CompiledSchema> {
    let branches = node
        .all_of
        .iter_mut()
        .chain(&mut node.one_of)
        .chain(&mut node.any_of);
    let containers = node.items.iter_mut().chain(&mut node.additional_properties);
    containers.map(|b| &mut **b).chain(branches)
}

fn has_rules(node: &CompiledSchema) -> bool {
    !node.validations.is_empty()
        || node.properties.values().any(has_rules)
        || nested(node).any(has_rules)
}

/// The entries under `node`: itself when it has rules of its own, or when the walk could reach
/// its rules other than by a property that is present (array items, map values, schema branches,
/// a defaulted property); otherwise its properties' entries.
fn entries(mut node: CompiledSchema, path: Vec<String>) -> Vec<Entry> {
    if !has_rules(&node) {
        return Vec::new();
    }
    let by_property_only = node.validations.is_empty()
        && !nested(&node).any(has_rules)
        && node
            .properties
            .values()
            .all(|c| !has_rules(c) || c.default.is_none());
    if !by_property_only {
        prune(&mut node);
        return vec![Entry { path, schema: node }];
    }
    let mut children: Vec<(String, CompiledSchema)> = node.properties.drain().collect();
    children.sort_by(|a, b| a.0.cmp(&b.0));
    children
        .into_iter()
        .flat_map(|(name, child)| {
            let mut at = path.clone();
            at.push(name);
            entries(child, at)
        })
        .collect()
}

/// Drops the properties that change nothing: no rules, no format, no default, no structure. Their
/// values convert to CEL the same without a schema, so the walk need not visit them.
fn prune(node: &mut CompiledSchema) {
    node.properties.retain(|_, child| {
        prune(child);
        !inert(child)
    });
}

fn inert(node: &CompiledSchema) -> bool {
    node.validations.is_empty()
        && node.properties.is_empty()
        && node.items.is_none()
        && node.additional_properties.is_none()
        && node.all_of.is_empty()
        && node.one_of.is_empty()
        && node.any_of.is_empty()
        && node.default.is_none()
        && !node.embedded_resource
        && !node.is_map
        && matches!(node.format, SchemaFormat::None)
}

/// Evaluates the CRD's CEL rules on `object` (and transition rules against `old` on update).
pub fn check(object: &Object, old: Option<&Object>) -> Result<(), Violation> {
    let (Ok(new), old) = (
        object.rule_input(),
        old.map(Object::rule_input).transpose().ok().flatten(),
    ) else {
        return Ok(());
    };
    check_json(object.kind(), &new, old.as_ref())
}

pub fn check_json(kind: Kind, object: &Value, old: Option<&Value>) -> Result<(), Violation> {
    SCHEMAS.with(|s| {
        let Some(rules) = s.kinds.iter().find(|k| k.kind == kind) else {
            return Ok(());
        };
        let entries = if old.is_some() {
            &rules.all
        } else {
            &rules.creation
        };
        for entry in entries {
            let Some(new) = at(object, &entry.path) else {
                continue;
            };
            let old = old.and_then(|o| at(o, &entry.path));
            if let Err(errors) = s.validator.validate_compiled(&entry.schema, new, old) {
                return Err(errors
                    .as_slice()
                    .first()
                    .map(to_violation)
                    .unwrap_or_else(|| {
                        Violation::new(
                            Reason::FieldImmutable,
                            "the object fails its schema's validation rules",
                        )
                    }));
            }
        }
        Ok(())
    })
}

fn at<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// CEL messages start with the rule id (`[R11] spec.role is immutable`); keep it as the rule.
fn to_violation(error: &kube::core::cel::ValidationError) -> Violation {
    let reason = error
        .message
        .strip_prefix('[')
        .and_then(|m| m.split_once(']'))
        .and_then(|(id, _)| RuleId::from_id(id))
        .and_then(RuleId::reason)
        .unwrap_or(Reason::FieldImmutable);
    let text = error
        .message
        .split_once("] ")
        .map_or(error.message.as_str(), |(_, t)| t);
    Violation::new(reason, text)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// `Object::rule_input` hands CEL only `metadata.name` and `spec`: every rule must sit under
    /// `spec`, or at the root reading nothing but those two.
    #[test]
    fn rules_read_only_name_and_spec() {
        fn walk(node: &Value, path: &mut Vec<String>, found: &mut Vec<(String, String)>) {
            let Some(map) = node.as_object() else { return };
            for rule in map
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = rule["rule"].as_str().unwrap_or_default().to_string();
                found.push((path.join("."), text));
            }
            for (key, child) in map
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                path.push(key.clone());
                walk(child, path, found);
                path.pop();
            }
            for key in ["items", "additionalProperties"] {
                if let Some(child) = map.get(key) {
                    path.push(key.to_string());
                    walk(child, path, found);
                    path.pop();
                }
            }
        }
        let mut found = Vec::new();
        for crd in crate::api::crds() {
            let schema = &crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema;
            walk(
                &serde_json::to_value(schema).unwrap(),
                &mut Vec::new(),
                &mut found,
            );
        }
        assert!(found.len() > 10, "the CRDs carry their rules: {found:?}");
        for (path, rule) in found {
            if path.is_empty() {
                let rest = [
                    "self.metadata.name",
                    "self.spec",
                    "oldSelf.metadata.name",
                    "oldSelf.spec",
                ]
                .iter()
                .fold(rule.clone(), |r, allowed| r.replace(allowed, ""));
                assert!(
                    !rest.to_lowercase().contains("self."),
                    "root rule `{rule}` reads more than metadata.name and spec"
                );
            } else {
                assert!(
                    path == "spec" || path.starts_with("spec."),
                    "rule `{rule}` at {path}"
                );
            }
        }
    }
}
