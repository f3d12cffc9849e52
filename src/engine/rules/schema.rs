//! The rules a single object can check on its own (R10 locked, R11 immutable, and the shape of
//! owner and default roles) live as CEL `x-kubernetes-validations` in the CRDs, so the API server
//! enforces them even without the webhook. `check` and the webhook evaluate the very same CEL from
//! the generated schema: the rule text and its message exist once, in `crate::api`.

use kube::core::cel::{CompiledSchema, Validator, compile_schema};
use serde_json::Value;

use crate::api::{self, Kind, Object};
use crate::engine::rule::{Reason, RuleId, Violation};

struct Schemas {
    validator: Validator,
    compiled: Vec<(Kind, CompiledSchema, bool)>,
}

/// Whether any rule in the schema runs without `oldSelf`, i.e. on creation too. Transition rules
/// never run on create, so a kind without creation rules skips CEL entirely there: admission is
/// a hot path.
fn has_creation_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.iter().any(|(key, value)| {
            let own = key == "x-kubernetes-validations"
                && value.as_array().is_some_and(|rules| {
                    rules.iter().any(|r| {
                        r.get("rule")
                            .and_then(Value::as_str)
                            .is_some_and(|r| !r.contains("oldSelf"))
                    })
                });
            own || has_creation_rules(value)
        }),
        Value::Array(items) => items.iter().any(has_creation_rules),
        _ => false,
    }
}

thread_local! {
    // Compiled once per thread: `Validator` is not `Sync`.
    static SCHEMAS: Schemas = Schemas {
        validator: Validator::new(),
        compiled: Kind::ALL.into_iter().zip(api::crds()).filter_map(|(kind, crd)| {
            let schema = crd.spec.versions.first()?.schema.as_ref()?.open_api_v3_schema.as_ref()?;
            let schema = serde_json::to_value(schema).ok()?;
            Some((kind, compile_schema(&schema), has_creation_rules(&schema)))
        }).collect(),
    };
}

/// Evaluates the CRD's CEL rules on `object` (and transition rules against `old` on update).
pub fn check(object: &Object, old: Option<&Object>) -> Result<(), Violation> {
    let kind = object.kind();
    let creation_rules = SCHEMAS.with(|s| {
        s.compiled
            .iter()
            .any(|(k, _, creation)| *k == kind && *creation)
    });
    if old.is_none() && !creation_rules {
        return Ok(());
    }
    let (Ok(new), old) = (
        object.to_json(),
        old.map(Object::to_json).transpose().ok().flatten(),
    ) else {
        return Ok(());
    };
    check_json(object.kind(), &new, old.as_ref())
}

pub fn check_json(kind: Kind, object: &Value, old: Option<&Value>) -> Result<(), Violation> {
    SCHEMAS.with(|s| {
        let Some((_, compiled, _)) = s.compiled.iter().find(|(k, _, _)| *k == kind) else {
            return Ok(());
        };
        match s.validator.validate_compiled(compiled, object, old) {
            Ok(()) => Ok(()),
            Err(errors) => Err(errors
                .as_slice()
                .first()
                .map(to_violation)
                .unwrap_or_else(|| {
                    Violation::new(
                        Reason::FieldImmutable,
                        "the object fails its schema's validation rules",
                    )
                })),
        }
    })
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
