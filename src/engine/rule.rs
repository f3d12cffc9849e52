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
    R17,
    R18,
}

impl RuleId {
    pub const ALL: [RuleId; 18] = [
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
        RuleId::R17,
        RuleId::R18,
    ];

    pub fn id(self) -> &'static str {
        self.info().0
    }

    /// The short name of DESIGN.md's rule table (`owner-unique`).
    pub fn slug(self) -> &'static str {
        self.info().1
    }

    /// The rule's main condition reason; R15 is a behaviour and never broken.
    pub fn reason(self) -> Option<Reason> {
        self.reasons().first().copied()
    }

    /// One line on what the rule demands, for `rolegate rules` and the README.
    pub fn summary(self) -> &'static str {
        self.info().2
    }

    /// Every reason the rule can give: R12 and R16 say what is wrong or missing.
    pub fn reasons(self) -> &'static [Reason] {
        use Reason::*;
        match self {
            RuleId::R1 => &[OwnerNotUnique],
            RuleId::R2 => &[OwnerMissing],
            RuleId::R3 => &[OwnerProtected],
            RuleId::R4 => &[OwnerTransferDenied],
            RuleId::R5 => &[ExclusiveRoleConflict],
            RuleId::R6 => &[ScopeMismatch],
            RuleId::R7 => &[MemberTypeNotAllowed],
            RuleId::R8 => &[AccountMismatch],
            RuleId::R9 => &[RedundantBinding],
            RuleId::R10 => &[RoleLocked],
            RuleId::R11 => &[FieldImmutable],
            RuleId::R12 => &[InvalidIncludes, IncludeNotFound],
            RuleId::R13 => &[DelegationDenied],
            RuleId::R14 => &[InvalidDefaultRole],
            RuleId::R15 => &[],
            RuleId::R16 => &[
                AccountNotFound,
                MemberNotFound,
                TeamNotFound,
                RoleNotFound,
                ProjectNotFound,
            ],
            RuleId::R17 => &[InvalidSubject],
            RuleId::R18 => &[InvalidWindow, NotYetActive, Expired],
        }
    }

    pub fn from_id(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.id() == id)
    }

    fn info(self) -> (&'static str, &'static str, &'static str) {
        match self {
            RuleId::R1 => (
                "R1",
                "owner-unique",
                "at most one owner binding per account, named `<account>-owner`; that name binds only an owner role, names a member (never a team) and has no time window",
            ),
            RuleId::R2 => (
                "R2",
                "owner-required",
                "an account without an accepted owner binding is not Ready (`OwnerBound=False`)",
            ),
            RuleId::R3 => (
                "R3",
                "owner-kept",
                "no change leaves an owned account without an owner: the accepted owner binding, the owner's Member and the owner role cannot be deleted or changed so that the owner binding stops being accepted",
            ),
            RuleId::R4 => (
                "R4",
                "owner-transfer",
                "moving the accepted owner binding to another member obeys the account's `spec.ownership`; the successor role must be held before the change, directly or through a team, by a grant active then, not through the moved binding",
            ),
            RuleId::R5 => (
                "R5",
                "exclusive",
                "no member holds two directly bound roles of one exclusive group on one scope, whether the bindings name it or a team it is in; an account-level binding counts on every project; two time-bound grants conflict only if their windows overlap; adding a member to a team is judged like granting it the team's roles",
            ),
            RuleId::R6 => (
                "R6",
                "scope",
                "a Project role needs `project`, an Account role must not name one; owner and default roles are Account roles",
            ),
            RuleId::R7 => (
                "R7",
                "member-type",
                "the role's `memberTypes` include the type of every member it reaches, directly or through a team",
            ),
            RuleId::R8 => (
                "R8",
                "same-account",
                "member, team, the team's members, binding and custom role belong to the same account",
            ),
            RuleId::R9 => (
                "R9",
                "redundant",
                "a binding that grants nothing beyond the other accepted grants (direct or through teams) of every member it reaches on that scope for its whole window (of two equal ones, the newer) warns, or is an error under `redundantBindings: Deny`",
            ),
            RuleId::R10 => (
                "R10",
                "locked",
                "a locked role's spec never changes and it cannot be deleted while bound",
            ),
            RuleId::R11 => (
                "R11",
                "immutable",
                "Member, Team and RoleBinding account, Member type, RoleBinding role, project and team, and the member of any binding but the owner binding never change",
            ),
            RuleId::R12 => (
                "R12",
                "includes",
                "included roles exist, are visible to the including role, and form no cycle",
            ),
            RuleId::R13 => (
                "R13",
                "delegated",
                "a member changes members, teams and bindings only with the account's member-admin permission at the scope of the change, grants only what it holds there unless it holds the bind right (`bindPermission`, or `<bindPermission>:<role>`), and never touches a binding that reaches itself nor its own team membership",
            ),
            RuleId::R14 => (
                "R14",
                "default",
                "a member that receives no accepted, active grant, direct or through a team, holds the default roles; a default role is an Account role and never the owner role",
            ),
            RuleId::R15 => (
                "R15",
                "implicit",
                "permissions of account-level roles apply on every project of the account (a behaviour: never a finding)",
            ),
            RuleId::R16 => (
                "R16",
                "reference",
                "account, member, team, role and project references resolve, including a team's members (a missing object is reported, not denied, and heals when it arrives)",
            ),
            RuleId::R17 => (
                "R17",
                "subject",
                "a binding names exactly one subject, `member` or `team`",
            ),
            RuleId::R18 => (
                "R18",
                "window",
                "`validFrom` < `validUntil` when both are set; outside its window `[validFrom, validUntil)` a binding is `Active=False` (`NotYetActive`, `Expired`) and grants nothing; the controller acts at each boundary; `check` warns about a binding that already expired",
            ),
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A condition reason: CamelCase, and tied to exactly one rule, so a violation's rule and reason
/// can never disagree and no code has to match reason strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    OwnerNotUnique,
    OwnerMissing,
    OwnerProtected,
    OwnerTransferDenied,
    ExclusiveRoleConflict,
    ScopeMismatch,
    MemberTypeNotAllowed,
    AccountMismatch,
    RedundantBinding,
    RoleLocked,
    FieldImmutable,
    InvalidIncludes,
    IncludeNotFound,
    DelegationDenied,
    InvalidDefaultRole,
    AccountNotFound,
    MemberNotFound,
    TeamNotFound,
    RoleNotFound,
    ProjectNotFound,
    InvalidSubject,
    InvalidWindow,
    NotYetActive,
    Expired,
}

impl Reason {
    pub fn rule(self) -> RuleId {
        use Reason::*;
        match self {
            OwnerNotUnique => RuleId::R1,
            OwnerMissing => RuleId::R2,
            OwnerProtected => RuleId::R3,
            OwnerTransferDenied => RuleId::R4,
            ExclusiveRoleConflict => RuleId::R5,
            ScopeMismatch => RuleId::R6,
            MemberTypeNotAllowed => RuleId::R7,
            AccountMismatch => RuleId::R8,
            RedundantBinding => RuleId::R9,
            RoleLocked => RuleId::R10,
            FieldImmutable => RuleId::R11,
            InvalidIncludes | IncludeNotFound => RuleId::R12,
            DelegationDenied => RuleId::R13,
            InvalidDefaultRole => RuleId::R14,
            AccountNotFound | MemberNotFound | TeamNotFound | RoleNotFound | ProjectNotFound => {
                RuleId::R16
            }
            InvalidSubject => RuleId::R17,
            InvalidWindow | NotYetActive | Expired => RuleId::R18,
        }
    }

    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            OwnerNotUnique => "OwnerNotUnique",
            OwnerMissing => "OwnerMissing",
            OwnerProtected => "OwnerProtected",
            OwnerTransferDenied => "OwnerTransferDenied",
            ExclusiveRoleConflict => "ExclusiveRoleConflict",
            ScopeMismatch => "ScopeMismatch",
            MemberTypeNotAllowed => "MemberTypeNotAllowed",
            AccountMismatch => "AccountMismatch",
            RedundantBinding => "RedundantBinding",
            RoleLocked => "RoleLocked",
            FieldImmutable => "FieldImmutable",
            InvalidIncludes => "InvalidIncludes",
            IncludeNotFound => "IncludeNotFound",
            DelegationDenied => "DelegationDenied",
            InvalidDefaultRole => "InvalidDefaultRole",
            AccountNotFound => "AccountNotFound",
            MemberNotFound => "MemberNotFound",
            TeamNotFound => "TeamNotFound",
            RoleNotFound => "RoleNotFound",
            ProjectNotFound => "ProjectNotFound",
            InvalidSubject => "InvalidSubject",
            InvalidWindow => "InvalidWindow",
            NotYetActive => "NotYetActive",
            Expired => "Expired",
        }
    }

    /// Whether the problem heals by itself when a missing object arrives (GitOps apply order),
    /// rather than needing someone to change the manifests: kstatus `Reconciling` vs `Stalled`,
    /// and at admission a warning instead of a denial.
    pub fn may_heal(self) -> bool {
        matches!(self.rule(), RuleId::R2 | RuleId::R16) || self == Reason::IncludeNotFound
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A broken rule: the rule, the condition reason and a message that starts with `[Rn]` and names
/// the objects involved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: RuleId,
    pub reason: Reason,
    pub message: String,
}

impl Violation {
    /// The rule comes from the reason, so the two always agree.
    pub fn new(reason: Reason, message: impl fmt::Display) -> Self {
        let rule = reason.rule();
        Self {
            rule,
            reason,
            message: format!("[{}] {message}", rule.id()),
        }
    }

    /// See [`Reason::may_heal`].
    pub fn may_heal(&self) -> bool {
        self.reason.may_heal()
    }

    /// Whether `other` breaks the same rule in the same way: what ratcheting compares.
    pub fn same_kind(&self, other: &Violation) -> bool {
        self.reason == other.reason
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How a finding counts: an error fails `check` and, unless it may heal, denies admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One violation found on one object, with how it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub violation: Violation,
    pub severity: Severity,
}

impl Finding {
    pub fn error(violation: Violation) -> Self {
        Self {
            violation,
            severity: Severity::Error,
        }
    }

    /// Whether admission denies this finding unless the old object broke the rule the same way:
    /// an error that does not heal by itself.
    pub fn denies(&self) -> bool {
        self.severity == Severity::Error && !self.violation.may_heal()
    }
}
