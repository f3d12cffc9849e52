//! What a member holds: its accepted grants (direct and through teams) with what their roles grant, after default roles
//! (R14) and implicit account-wide access (R15).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::context::Ctx;
use super::resolve::Resolved;
use super::rules::window::Window;
use super::slim::{Member, Role};
use crate::api::{RoleScope, ScopedNames};

/// A binding that counts: accepted, with what its role grants.
#[derive(Debug, Clone)]
pub struct Held<'a> {
    pub binding: &'a str,
    /// The team the grant comes through; `None` for a direct binding.
    pub team: Option<&'a str>,
    pub role_name: &'a str,
    pub role: &'a Role,
    /// `None` at account scope.
    pub project: Option<&'a str>,
    pub grants: Rc<Resolved<'a>>,
    /// When it grants (R18); accepted grants outside it still count for R5 and R9.
    pub window: Window,
}

impl Held<'_> {
    /// Whether this binding applies on `project` (`None`: the account): an account-level binding
    /// applies everywhere (R15).
    pub fn covers(&self, project: Option<&str>) -> bool {
        self.project.is_none() || self.project == project
    }

    /// Whether it grants at `now` (R18).
    pub fn active(&self, now: k8s_openapi::jiff::Timestamp) -> bool {
        self.window.contains(now)
    }
}

/// What `member` holds in the view `ctx`: its effective access from every accepted grant, direct
/// and through its teams, active at `ctx.now`, after includes, default roles and implicit access
/// (the contract's "Grants"). Every rule that asks what a member holds (R4's successor role, R13's
/// requester and the members a delegated change moves) asks this; Member status, `explain` and
/// `who-can` read the evaluation's [`access`] over the same judgement.
pub(crate) fn holdings(ctx: &Ctx<'_>, member: &str) -> Access {
    let judged = super::evaluate::judge_member(ctx, member);
    access(ctx, ctx.member(member), &judged.held)
}

/// Roles and permissions per scope, as written to Member status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Access {
    pub roles: ScopedNames,
    pub permissions: ScopedNames,
    /// The member holds the default roles because no binding of theirs is accepted and active
    /// (R14).
    pub defaulted: bool,
}

impl Access {
    /// Effective permissions at a scope: the account's, plus what the project adds when one is
    /// named (R15: `account ∪ projects[p]`).
    pub fn permissions_at(&self, project: Option<&str>) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self
            .permissions
            .account
            .iter()
            .map(String::as_str)
            .collect();
        if let Some(p) = project.and_then(|p| self.permissions.projects.get(p)) {
            out.extend(p.iter().map(String::as_str));
        }
        out
    }

    /// Roles and permissions laid out per project, each project with the account-level access
    /// repeated (what `explain` shows): every one of `projects` when the member holds something
    /// at account scope, else those that add something.
    pub fn expanded<'p>(
        &self,
        projects: impl IntoIterator<Item = &'p str>,
    ) -> (ScopedNames, ScopedNames) {
        let (mut roles, mut permissions) = (self.roles.clone(), self.permissions.clone());
        let everywhere = !self.roles.account.is_empty();
        for p in projects {
            let named = self.roles.projects.contains_key(p);
            if !(everywhere || named) {
                continue;
            }
            for (out, account) in [
                (&mut roles, &self.roles.account),
                (&mut permissions, &self.permissions.account),
            ] {
                let list = out.projects.entry(p.to_owned()).or_default();
                let merged: BTreeSet<String> = list.iter().chain(account.iter()).cloned().collect();
                *list = merged.into_iter().collect();
            }
        }
        (roles, permissions)
    }
}

/// The effective access of a member from its accepted bindings active at `ctx.now`, or from the
/// default roles when none is (R14, R18).
pub(crate) fn access<'a>(ctx: &Ctx<'a>, member: Option<&'a Member>, held: &[Held<'a>]) -> Access {
    let held: Vec<&Held<'a>> = held.iter().filter(|h| h.active(ctx.now)).collect();
    let mut account_roles: BTreeSet<&str> = BTreeSet::new();
    let mut account_perms: BTreeSet<&str> = BTreeSet::new();
    let mut projects: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    let defaulted = held.is_empty();
    if defaulted {
        for role_name in ctx.default_roles() {
            let Some(role) = ctx.role(role_name) else {
                continue;
            };
            let eligible =
                member.is_none_or(|m| role.spec.member_types.contains(&m.spec.member_type));
            if eligible && role.spec.scope == RoleScope::Account {
                let grants = ctx.resolve(role_name);
                account_roles.extend(grants.roles.iter().copied());
                account_perms.extend(grants.permissions.iter().copied());
            }
        }
    }
    for h in held {
        let (roles, perms) = match h.project {
            None => (&mut account_roles, &mut account_perms),
            Some(p) => {
                let entry = projects.entry(p).or_default();
                (&mut entry.0, &mut entry.1)
            }
        };
        roles.extend(h.grants.roles.iter().copied());
        perms.extend(h.grants.permissions.iter().copied());
    }
    // R15: account-level access holds on every project. It is stated once, under `account`:
    // a project lists only what it adds, so a Member's status grows with its own grants, never
    // with the account's project count (`Access::expanded` lays it out per project).
    let to_vec = |s: &BTreeSet<&str>| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let mut access = Access {
        defaulted,
        ..Access::default()
    };
    for (p, (roles, perms)) in projects {
        let roles: BTreeSet<&str> = roles.difference(&account_roles).copied().collect();
        let perms: BTreeSet<&str> = perms.difference(&account_perms).copied().collect();
        if !roles.is_empty() {
            access.roles.projects.insert(p.to_owned(), to_vec(&roles));
        }
        if !perms.is_empty() {
            access
                .permissions
                .projects
                .insert(p.to_owned(), to_vec(&perms));
        }
    }
    access.roles.account = to_vec(&account_roles);
    access.permissions.account = to_vec(&account_perms);
    access
}
