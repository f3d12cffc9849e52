//! Rule ids and the violation type every adapter renders: the webhook denial, the status
//! condition, the CLI diagnostic and the metrics label all come from one [`Violation`].

use std::fmt;

use serde::Serialize;

/// The rules of DESIGN.md. The id is what users grep for; the reason is the CamelCase condition
/// reason (a rule may have several reasons, R16 names what is missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RuleId {
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    R16,
}

impl RuleId {
    pub const ALL: [RuleId; 16] = [
        RuleId::R1,
        RuleId::R2,
        RuleId::R3,
        RuleId::R4,
        RuleId::R5,
        RuleId::R6,
        RuleId::R7,
        RuleId::R8,
        RuleId::R9,
        RuleId::R10,
        RuleId::R11,
        RuleId::R12,
        RuleId::R13,
        RuleId::R14,
        RuleId::R15,
        RuleId::R16,
    ];

    pub fn id(self) -> &'static str {
        self.info().0
    }

    /// The short name of DESIGN.md's rule table (`owner-unique`).
    pub fn slug(self) -> &'static str {
        self.info().1
    }

    /// The condition reason used when the rule is broken.
    pub fn reason(self) -> &'static str {
        self.info().2
    }

    /// One line on what the rule demands, for `rolegate rules` and the README.
    pub fn summary(self) -> &'static str {
        self.info().3
    }

    /// Every reason the rule can give: R16 says which reference is missing.
    pub fn reasons(self) -> Vec<&'static str> {
        match self {
            RuleId::R12 => vec!["InvalidIncludes", "IncludeNotFound"],
            RuleId::R16 => vec![
                "AccountNotFound",
                "MemberNotFound",
                "RoleNotFound",
                "ProjectNotFound",
            ],
            _ => vec![self.reason()],
        }
    }

    pub fn from_id(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.id() == id)
    }

    fn info(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            RuleId::R1 => (
                "R1",
                "owner-unique",
                "OwnerNotUnique",
                "at most one owner binding per account, named `<account>-owner`; that name binds only an owner role",
            ),
            RuleId::R2 => (
                "R2",
                "owner-required",
                "OwnerMissing",
                "an account without an accepted owner binding is not Ready (`OwnerBound=False`)",
            ),
            RuleId::R3 => (
                "R3",
                "owner-kept",
                "OwnerProtected",
                "the owner binding, the owner's Member and the owner role cannot be deleted or changed so that the account is left without an owner",
            ),
            RuleId::R4 => (
                "R4",
                "owner-transfer",
                "OwnerTransferDenied",
                "moving the owner binding to another member obeys the account's `spec.ownership`",
            ),
            RuleId::R5 => (
                "R5",
                "exclusive",
                "ExclusiveRoleConflict",
                "no member holds two directly bound roles of one exclusive group on one scope; an account-level binding counts on every project",
            ),
            RuleId::R6 => (
                "R6",
                "scope",
                "ScopeMismatch",
                "a Project role needs `project`, an Account role must not name one; owner and default roles are Account roles",
            ),
            RuleId::R7 => (
                "R7",
                "member-type",
                "MemberTypeNotAllowed",
                "the role's `memberTypes` include the member's type",
            ),
            RuleId::R8 => (
                "R8",
                "same-account",
                "AccountMismatch",
                "member, binding and custom role belong to the same account",
            ),
            RuleId::R9 => (
                "R9",
                "redundant",
                "RedundantBinding",
                "a binding that grants nothing beyond another accepted binding of the member on that scope warns (or is denied under `redundantBindings: Deny`)",
            ),
            RuleId::R10 => (
                "R10",
                "locked",
                "RoleLocked",
                "a locked role's spec never changes and it cannot be deleted while bound",
            ),
            RuleId::R11 => (
                "R11",
                "immutable",
                "FieldImmutable",
                "Member account and type, RoleBinding account, role and project, and the member of any binding but the owner binding never change",
            ),
            RuleId::R12 => (
                "R12",
                "includes",
                "InvalidIncludes",
                "included roles exist, are visible to the including role, and form no cycle",
            ),
            RuleId::R13 => (
                "R13",
                "delegated",
                "DelegationDenied",
                "a member changes members and bindings only with the account's member-admin permission, grants only what it holds, and never touches its own bindings",
            ),
            RuleId::R14 => (
                "R14",
                "default",
                "DefaultRoles",
                "a member with no accepted binding holds the default roles",
            ),
            RuleId::R15 => (
                "R15",
                "implicit",
                "ImplicitAccess",
                "permissions of account-level roles apply on every project of the account",
            ),
            RuleId::R16 => (
                "R16",
                "reference",
                "ReferenceNotFound",
                "account, member, role and project references resolve (a missing object is reported, not denied, and heals when it arrives)",
            ),
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A broken rule: the rule, the condition reason and a message that starts with `[Rn]` and names
/// the objects involved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: RuleId,
    pub reason: &'static str,
    pub message: String,
}

impl Violation {
    pub fn new(rule: RuleId, message: impl fmt::Display) -> Self {
        Self {
            rule,
            reason: rule.reason(),
            message: format!("[{}] {message}", rule.id()),
        }
    }

    /// For rules with more than one reason (R16 says what is missing).
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }

    /// Whether the problem heals by itself when a missing object arrives (GitOps apply order),
    /// rather than needing someone to change the manifests: kstatus `Reconciling` vs `Stalled`.
    pub fn may_heal(&self) -> bool {
        matches!(self.rule, RuleId::R2 | RuleId::R16) || self.reason == "IncludeNotFound"
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
