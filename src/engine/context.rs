//! The view one evaluation has of the index: one namespace, one account, and optionally one
//! object under admission that replaces (or removes) its indexed namesake.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::LazyLock;

use foldhash::HashMap;
use k8s_openapi::jiff::Timestamp;

use super::index::{AccountKey, AccountObjects, Index, Namespace};
use super::resolve::{Resolver, Roles};
use super::rule::Violation;
use super::slim::{Account, Entry, Member, Role, RoleBinding, Team};
use crate::api::{Kind, Subject};

static EMPTY: LazyLock<Namespace> = LazyLock::new(Namespace::default);

/// A hypothetical change laid over the index: what admission judges.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change<'a> {
    None,
    Put(&'a Entry),
    /// A new object under CREATE admission: not stored yet, so newer than everything stored,
    /// whatever timestamps say (conflicts go to the older binding).
    Create(&'a Entry),
    Remove(Kind, &'a str),
}

impl<'a> Change<'a> {
    /// The object the change lays over the index, if any.
    pub fn put(self) -> Option<&'a Entry> {
        match self {
            Change::Put(o) | Change::Create(o) => Some(o),
            Change::None | Change::Remove(..) => None,
        }
    }

    /// Whether `binding` is the object a CREATE brings. By identity: a view returns the change's
    /// own object for its name, and age ordering asks this for every comparison.
    pub fn creates(self, binding: &RoleBinding) -> bool {
        matches!(self, Change::Create(Entry::RoleBinding(b)) if std::ptr::eq(b, binding))
    }
}

pub(crate) struct Ctx<'a> {
    pub namespace: &'a str,
    pub ns: &'a Namespace,
    pub account_name: &'a str,
    /// What the index files under the account, looked up once for the view.
    objects: Option<&'a AccountObjects>,
    pub change: Change<'a>,
    pub resolver: Resolver<'a>,
    /// What each binding of this view passes or fails whoever it reaches, by identity: a team's
    /// binding is judged once for each of its members, its own checks need running only once.
    pub grants: RefCell<HashMap<*const RoleBinding, Result<&'a Role, Violation>>>,
    /// The instant the view is judged at (R18): the caller's clock, never read here.
    pub now: Timestamp,
}

impl<'a> Ctx<'a> {
    /// The account `key` as the index holds it, with no change laid over it, at `now`: what
    /// evaluation, explain and the decision API read.
    pub fn stored(index: &'a Index, key: &'a AccountKey, now: Timestamp) -> Self {
        Self::new(
            &key.namespace,
            index.namespace(&key.namespace),
            &key.account,
            Change::None,
            now,
        )
    }

    pub fn new(
        namespace: &'a str,
        ns: Option<&'a Namespace>,
        account_name: &'a str,
        change: Change<'a>,
        now: Timestamp,
    ) -> Self {
        let ns = ns.unwrap_or(&EMPTY);
        Self {
            namespace,
            ns,
            account_name,
            objects: ns.account_objects(account_name),
            change,
            resolver: Resolver::default(),
            grants: RefCell::default(),
            now,
        }
    }

    /// The indexed object, unless the change replaces or removes it.
    fn changed(&self, kind: Kind, name: &str) -> Option<Option<&'a Entry>> {
        match self.change {
            Change::Put(o) | Change::Create(o) if o.kind() == kind && o.name() == name => {
                Some(Some(o))
            }
            Change::Remove(k, n) if k == kind && n == name => Some(None),
            _ => None,
        }
    }

    pub fn account(&self) -> Option<&'a Account> {
        self.account_named(self.account_name)
    }

    pub fn account_named(&self, name: &str) -> Option<&'a Account> {
        match self.changed(Kind::Account, name) {
            Some(Some(Entry::Account(a))) => Some(a),
            Some(_) => None,
            None => self.ns.account(name),
        }
    }

    pub fn member(&self, name: &str) -> Option<&'a Member> {
        match self.changed(Kind::Member, name) {
            Some(Some(Entry::Member(m))) => Some(m),
            Some(_) => None,
            None => self.ns.member(name),
        }
    }

    pub fn team(&self, name: &str) -> Option<&'a Team> {
        match self.changed(Kind::Team, name) {
            Some(Some(Entry::Team(t))) => Some(t),
            Some(_) => None,
            None => self.ns.team(name),
        }
    }

    pub fn role(&self, name: &str) -> Option<&'a Role> {
        match self.changed(Kind::Role, name) {
            Some(Some(Entry::Role(r))) => Some(r),
            Some(_) => None,
            None => self.ns.role(name),
        }
    }

    /// What `name` grants after `includes`, memoised for this view.
    pub fn resolve(&self, name: &'a str) -> std::rc::Rc<super::resolve::Resolved<'a>> {
        self.resolver.resolve(self, name)
    }

    pub fn binding(&self, name: &str) -> Option<&'a RoleBinding> {
        match self.changed(Kind::RoleBinding, name) {
            Some(Some(Entry::RoleBinding(b))) => Some(b),
            Some(_) => None,
            None => self.ns.binding(name),
        }
    }

    /// Names of the account's project scopes.
    pub fn projects(&self) -> impl Iterator<Item = &'a str> {
        self.account()
            .into_iter()
            .flat_map(|a| a.spec.projects.iter().map(|p| p.name.as_str()))
    }

    /// Members that name this account, change applied.
    pub fn members(&self) -> BTreeSet<&'a str> {
        let mut names: BTreeSet<&'a str> = BTreeSet::new();
        if let Some(objects) = self.objects {
            names.extend(objects.members.iter().map(smol_str::SmolStr::as_str));
        }
        if let Some(Entry::Member(m)) = self.change.put() {
            names.extend(m.metadata.name.as_deref());
        }
        names.retain(|n| {
            self.member(n)
                .is_some_and(|m| m.spec.account == self.account_name)
        });
        names
    }

    /// Teams that name this account, change applied.
    pub fn teams(&self) -> BTreeSet<&'a str> {
        let mut names: BTreeSet<&'a str> = BTreeSet::new();
        if let Some(objects) = self.objects {
            names.extend(objects.teams.iter().map(smol_str::SmolStr::as_str));
        }
        if let Some(Entry::Team(t)) = self.change.put() {
            names.extend(t.metadata.name.as_deref());
        }
        names.retain(|n| {
            self.team(n)
                .is_some_and(|t| t.spec.account == self.account_name)
        });
        names
    }

    /// Every binding of this account, change applied: direct, team and subject-less ones.
    pub fn bindings(&self) -> Vec<&'a RoleBinding> {
        let mut names: BTreeSet<&'a str> = BTreeSet::new();
        if let Some(objects) = self.objects {
            let all = objects
                .bindings
                .values()
                .chain(objects.team_bindings.values());
            names.extend(
                all.flatten()
                    .chain(&objects.unbound)
                    .map(smol_str::SmolStr::as_str),
            );
        }
        if let Some(Entry::RoleBinding(b)) = self.change.put() {
            names.extend(b.metadata.name.as_deref());
        }
        names
            .into_iter()
            .filter_map(|n| self.binding(n))
            .filter(|b| b.spec.account == self.account_name)
            .collect()
    }

    /// Members named by a direct binding of this account, whether they exist or not.
    pub fn bound_members(&self) -> BTreeSet<&'a str> {
        self.bindings()
            .into_iter()
            .filter_map(|b| b.spec.member_name())
            .collect()
    }

    /// Bindings of this account naming `team`, change applied.
    pub fn bindings_of_team(&self, team: &str) -> Vec<&'a RoleBinding> {
        let mut out = Vec::new();
        self.bindings_filed(&mut out, Subject::Team(team));
        out
    }

    /// Adds to `out` the bindings the index files under one subject, plus the changed binding, as
    /// this view sees them: still of this account and still naming that subject.
    fn bindings_filed(&self, out: &mut Vec<&'a RoleBinding>, subject: Subject<'_>) {
        let filed = self.objects.and_then(|o| match subject {
            Subject::Member(m) => o.bindings.get(m),
            Subject::Team(t) => o.team_bindings.get(t),
        });
        let changed = match self.change.put() {
            Some(Entry::RoleBinding(b)) => b.metadata.name.as_deref(),
            _ => None,
        };
        out.reserve(filed.map_or(0, |f| f.len()) + 1);
        let names = with_changed(
            filed.into_iter().flatten().map(smol_str::SmolStr::as_str),
            changed,
        );
        out.extend(
            names.filter_map(|n| self.binding(n)).filter(|b| {
                b.spec.account == self.account_name && b.spec.subject() == Some(subject)
            }),
        );
    }

    /// Teams of this account that list `member`, change applied.
    pub fn teams_of_member(&self, member: &str) -> Vec<&'a str> {
        let changed = match self.change.put() {
            Some(Entry::Team(t)) => t.metadata.name.as_deref(),
            _ => None,
        };
        with_changed(self.ns.teams_of_member(member), changed)
            .filter(|n| {
                self.team(n).is_some_and(|t| {
                    t.spec.account == self.account_name
                        && t.spec.members.iter().any(|m| m == member)
                })
            })
            .collect()
    }

    /// Every binding that would grant to `member`: its direct bindings and those of every team
    /// of the account that lists it (the Grants paragraph of DESIGN.md). The only way to a
    /// member's bindings: a rule that read its direct ones alone would judge part of what it
    /// holds (issue 24).
    pub fn grants_of_member(&self, member: &str) -> Vec<&'a RoleBinding> {
        let mut out = Vec::new();
        self.bindings_filed(&mut out, Subject::Member(member));
        for team in self.teams_of_member(member) {
            self.bindings_filed(&mut out, Subject::Team(team));
        }
        out
    }

    /// Members a team of this account reaches: listed, existing, and of the same account.
    pub fn team_members(&self, team: &str) -> Vec<&'a str> {
        let Some(t) = self.team(team) else {
            return Vec::new();
        };
        // Sorted and without repeats, as a set would give, in one vector.
        let mut listed: Vec<&'a str> = t
            .spec
            .members
            .iter()
            .map(String::as_str)
            .filter(|m| {
                self.member(m)
                    .is_some_and(|m| m.spec.account == self.account_name)
            })
            .collect();
        listed.sort_unstable();
        listed.dedup();
        listed
    }

    /// Whether team `team` reaches `member`: lists it, and it is a Member of this account.
    pub fn team_reaches(&self, team: &str, member: &str) -> bool {
        self.team(team)
            .is_some_and(|t| t.spec.members.iter().any(|m| m == member))
            && self
                .member(member)
                .is_some_and(|m| m.spec.account == self.account_name)
    }

    /// Bindings of the namespace (any account) that name `team`, change applied.
    pub fn bindings_naming_team(&self, team: &str) -> Vec<&'a str> {
        let mut names: BTreeSet<&'a str> = self.ns.bindings_of_team(team).collect();
        if let Some(Entry::RoleBinding(b)) = self.change.put() {
            names.extend(b.metadata.name.as_deref());
        }
        names.retain(|n| {
            self.binding(n)
                .is_some_and(|b| b.spec.team_name() == Some(team))
        });
        names.into_iter().collect()
    }

    /// Bindings of the namespace (any account) that name `role`, change applied.
    pub fn bindings_of_role(&self, role: &str) -> Vec<&'a str> {
        let mut names: BTreeSet<&'a str> = self.ns.bindings_of_role(role).collect();
        if let Some(Entry::RoleBinding(b)) = self.change.put() {
            names.extend(b.metadata.name.as_deref());
        }
        names.retain(|n| self.binding(n).is_some_and(|b| b.spec.role == role));
        names.into_iter().collect()
    }

    /// The same view for another account of the namespace (role changes reach several).
    pub fn for_account(&self, account_name: &'a str) -> Ctx<'a> {
        Ctx {
            namespace: self.namespace,
            ns: self.ns,
            account_name,
            objects: self.ns.account_objects(account_name),
            change: self.change,
            resolver: Resolver::default(),
            grants: RefCell::default(),
            now: self.now,
        }
    }

    /// Default roles visible to this account: shared ones and the account's own (R14).
    pub fn default_roles(&self) -> Vec<&'a str> {
        let mut names: BTreeSet<&'a str> = self
            .ns
            .default_roles
            .iter()
            .map(smol_str::SmolStr::as_str)
            .collect();
        if let Some(objects) = self.objects {
            names.extend(objects.roles.iter().map(smol_str::SmolStr::as_str));
        }
        if let Some(Entry::Role(r)) = self.change.put() {
            names.extend(r.metadata.name.as_deref());
        }
        names
            .into_iter()
            .filter(|n| {
                self.role(n).is_some_and(|r| {
                    r.spec.default
                        && r.spec
                            .account
                            .as_deref()
                            .is_none_or(|a| a == self.account_name)
                })
            })
            .collect()
    }
}

impl<'a> Roles<'a> for Ctx<'a> {
    fn role(&self, name: &str) -> Option<&'a Role> {
        Ctx::role(self, name)
    }
}

/// Names the index files in order, with the changed object's name in its place if it is not
/// among them, as a set would give, without building one on every lookup.
fn with_changed<'a>(
    filed: impl Iterator<Item = &'a str>,
    changed: Option<&'a str>,
) -> impl Iterator<Item = &'a str> {
    let mut filed = filed.peekable();
    let mut pending = changed;
    std::iter::from_fn(move || match (pending, filed.peek()) {
        (Some(c), Some(&n)) if c <= n => {
            pending = None;
            if c == n { filed.next() } else { Some(c) }
        }
        (Some(c), None) => {
            pending = None;
            Some(c)
        }
        _ => filed.next(),
    })
}
