//! The rule engine: pure functions over an in-memory [`Index`] of the five kinds, with no kube
//! client and no I/O. The controller, the webhook and `check` are adapters around it.

pub mod admission;
mod context;
pub mod decide;
pub mod effective;
pub mod evaluate;
pub mod explain;
pub mod index;
pub mod name_set;
pub mod resolve;
pub mod rule;
pub mod rules;
pub mod slim;

pub use admission::{Decision, Operation, Requester, Review, SchemaRules, admit, admit_with};
pub use effective::Access;
pub use evaluate::{
    AccountEvaluation, BindingVerdict, GrantSource, MemberVerdict, RoleEvaluation, TeamVerdict,
    evaluate_account, evaluate_role,
};
pub use index::{AccountKey, Index, Namespace};
pub use k8s_openapi::jiff::Timestamp;
pub use rule::{Finding, Reason, RuleId, Severity, Violation};
pub use slim::{Entry, Slim};

#[cfg(test)]
mod holdings_tests;
