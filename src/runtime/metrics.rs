//! Prometheus metrics, prefixed `rolegate_`, served on `/metrics`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::AccountKey;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub operation: String,
    pub kind: String,
    pub result: String,
    pub rule: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub status_writes: Family<KindLabels, Counter>,
    pub conflicts: Family<RuleLabels, Gauge>,
    pub admissions: Family<AdmissionLabels, Counter>,
    pub admission_duration: Family<KindLabels, Histogram>,
    /// Conflicts per account and rule, so the gauge is a sum that each account reconcile corrects.
    by_account: Mutex<HashMap<AccountKey, BTreeMap<String, i64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rolegate");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let status_writes = Family::<KindLabels, Counter>::default();
        let conflicts = Family::<RuleLabels, Gauge>::default();
        let admissions = Family::<AdmissionLabels, Counter>::default();
        let admission_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00001, 2.0, 16))
        });
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one object",
            reconcile_duration.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches written, by kind",
            status_writes.clone(),
        );
        registry.register(
            "conflicts",
            "Bindings not accepted, by rule",
            conflicts.clone(),
        );
        registry.register(
            "admission_decisions",
            "Admission decisions by operation, kind, result and rule",
            admissions.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to judge one admission request",
            admission_duration.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            status_writes,
            conflicts,
            admissions,
            admission_duration,
            by_account: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Records an account's current conflicts by rule, replacing what it had before.
    pub fn set_conflicts(&self, key: &AccountKey, by_rule: BTreeMap<String, i64>) {
        let Ok(mut all) = self.by_account.lock() else {
            return;
        };
        let old = all.remove(key).unwrap_or_default();
        for (rule, n) in &old {
            self.conflicts
                .get_or_create(&RuleLabels { rule: rule.clone() })
                .dec_by(*n);
        }
        for (rule, n) in &by_rule {
            self.conflicts
                .get_or_create(&RuleLabels { rule: rule.clone() })
                .inc_by(*n);
        }
        if !by_rule.is_empty() {
            all.insert(key.clone(), by_rule);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
