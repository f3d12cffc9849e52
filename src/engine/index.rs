//! The in-memory index of the five kinds, fed by watches (controller, webhook) or by manifests
//! (`check`). Every object is filed under its namespace and, where it names one, its account, so
//! evaluating an account touches only that account's objects. Objects are kept as slim
//! [`Entry`]s (name, age, spec): the index holds the whole cluster.
//!
//! Memory: the index holds every object, at 10,000 accounts 160,000 of them. Entries are boxed, so
//! a table holds a pointer per object and growing one moves pointers, not 240-byte entries (a
//! growing table is alive twice for a moment). Names are [`SmolStr`]s: a name of up to 23 bytes
//! (most object names) takes no allocation, and a binding's name is held four times (its table's
//! key, its account's, its role's and its member's sets).

use std::collections::{BTreeMap, BTreeSet};

// foldhash, not SipHash: names are hashed on every lookup of every evaluation, and the keys come
// from the cluster's own objects, which only their writers (already trusted with RBAC) choose.
use foldhash::HashMap;
use smol_str::SmolStr;

use super::name_set::NameSet;
use super::slim::{Account, Entry, Member, Role, RoleBinding, Team};
use crate::api::{Kind, Object};

/// Identifies one account: accounts are namespaced, references stay inside the namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountKey {
    pub namespace: String,
    pub account: String,
}

impl AccountKey {
    pub fn new(namespace: impl Into<String>, account: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            account: account.into(),
        }
    }
}

impl std::fmt::Display for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.account)
    }
}

/// The objects that name one account.
#[derive(Debug, Default)]
pub struct AccountObjects {
    pub members: Names,
    pub teams: Names,
    /// Direct bindings by the member they name: R5 and R9 are judged per member.
    pub bindings: BTreeMap<SmolStr, Names>,
    /// Team bindings by the team they name: a member's grants are its direct bindings plus
    /// those of every team that lists it.
    pub team_bindings: BTreeMap<SmolStr, Names>,
    /// Bindings that name no subject or both (R17).
    pub unbound: Names,
    /// Custom roles private to the account.
    pub roles: Names,
}

/// A set of object names as the index keeps them.
pub type Names = NameSet<SmolStr>;

impl AccountObjects {
    fn is_empty(&self) -> bool {
        self.members.is_empty()
            && self.teams.is_empty()
            && self.bindings.is_empty()
            && self.team_bindings.is_empty()
            && self.unbound.is_empty()
            && self.roles.is_empty()
    }

    fn binding_set(&mut self, spec: &crate::api::RoleBindingSpec) -> &mut Names {
        use crate::api::Subject;
        match spec.subject() {
            Some(Subject::Member(m)) => self.bindings.entry(m.into()).or_default(),
            Some(Subject::Team(t)) => self.team_bindings.entry(t.into()).or_default(),
            None => &mut self.unbound,
        }
    }

    fn unfile_binding(&mut self, spec: &crate::api::RoleBindingSpec, name: &str) {
        use crate::api::Subject;
        let (map, key) = match spec.subject() {
            Some(Subject::Member(m)) => (&mut self.bindings, m),
            Some(Subject::Team(t)) => (&mut self.team_bindings, t),
            None => {
                self.unbound.remove(name);
                return;
            }
        };
        if let Some(set) = map.get_mut(key) {
            set.remove(name);
            if set.is_empty() {
                map.remove(key);
            }
        }
    }
}

/// One namespace: a role catalog and any number of accounts.
#[derive(Debug, Default)]
pub struct Namespace {
    pub(crate) accounts: HashMap<SmolStr, Box<Account>>,
    pub(crate) members: HashMap<SmolStr, Box<Member>>,
    pub(crate) teams: HashMap<SmolStr, Box<Team>>,
    pub(crate) roles: HashMap<SmolStr, Box<Role>>,
    pub(crate) bindings: HashMap<SmolStr, Box<RoleBinding>>,
    pub(crate) by_account: HashMap<SmolStr, AccountObjects>,
    /// Bindings by the role they name: R10 deletion, bound counts, and which accounts a role
    /// change re-evaluates.
    pub(crate) role_bindings: HashMap<SmolStr, BTreeSet<SmolStr>>,
    /// Bindings by the member they name, whatever account they claim (R8 crosses accounts).
    pub(crate) member_bindings: HashMap<SmolStr, Names>,
    /// Bindings by the team they name, whatever account they claim (R8 crosses accounts).
    pub(crate) team_bindings: HashMap<SmolStr, Names>,
    /// Teams by the members they list, whatever account either belongs to.
    pub(crate) member_teams: HashMap<SmolStr, Names>,
    /// Members by `spec.identity`, to map an admission requester to a member (R13).
    pub(crate) identities: HashMap<SmolStr, Names>,
    /// Shared (catalog) roles with `default: true` (R14).
    pub(crate) default_roles: BTreeSet<SmolStr>,
}

impl Namespace {
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name).map(Box::as_ref)
    }
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.get(name).map(Box::as_ref)
    }
    pub fn team(&self, name: &str) -> Option<&Team> {
        self.teams.get(name).map(Box::as_ref)
    }
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name).map(Box::as_ref)
    }

    /// Names of the teams that list `member`, of any account.
    pub fn teams_of_member(&self, member: &str) -> impl Iterator<Item = &str> {
        self.member_teams
            .get(member)
            .into_iter()
            .flatten()
            .map(SmolStr::as_str)
    }

    /// Names of the bindings that name `team`, of any account.
    pub fn bindings_of_team(&self, team: &str) -> impl Iterator<Item = &str> {
        self.team_bindings
            .get(team)
            .into_iter()
            .flatten()
            .map(SmolStr::as_str)
    }
    pub fn binding(&self, name: &str) -> Option<&RoleBinding> {
        self.bindings.get(name).map(Box::as_ref)
    }

    pub(crate) fn account_objects(&self, account: &str) -> Option<&AccountObjects> {
        self.by_account.get(account)
    }

    /// Names of the bindings that name `role`.
    pub fn bindings_of_role(&self, role: &str) -> impl Iterator<Item = &str> {
        self.role_bindings
            .get(role)
            .into_iter()
            .flatten()
            .map(SmolStr::as_str)
    }

    /// Names of the members that authenticate as `identity`.
    pub fn members_with_identity(&self, identity: &str) -> impl Iterator<Item = &str> {
        self.identities
            .get(identity)
            .into_iter()
            .flatten()
            .map(SmolStr::as_str)
    }

    fn file(&mut self, account: &str) -> &mut AccountObjects {
        self.by_account.entry(account.into()).or_default()
    }

    fn unfile(&mut self, account: &str, f: impl FnOnce(&mut AccountObjects)) {
        if let Some(objects) = self.by_account.get_mut(account) {
            f(objects);
            if objects.is_empty() && !self.accounts.contains_key(account) {
                self.by_account.remove(account);
            }
        }
    }

    fn remove(&mut self, kind: Kind, name: &str) {
        match kind {
            Kind::Account => {
                self.accounts.remove(name);
                if self
                    .by_account
                    .get(name)
                    .is_some_and(AccountObjects::is_empty)
                {
                    self.by_account.remove(name);
                }
            }
            Kind::Member => {
                if let Some(old) = self.members.remove(name) {
                    self.unfile(&old.spec.account, |o| {
                        o.members.remove(name);
                    });
                    if let Some(identity) = &old.spec.identity {
                        remove_from(&mut self.identities, identity, name);
                    }
                }
            }
            Kind::Team => {
                if let Some(old) = self.teams.remove(name) {
                    self.unfile(&old.spec.account, |o| {
                        o.teams.remove(name);
                    });
                    for member in &old.spec.members {
                        remove_from(&mut self.member_teams, member, name);
                    }
                }
            }
            Kind::Role => {
                if let Some(old) = self.roles.remove(name) {
                    if let Some(account) = &old.spec.account {
                        self.unfile(account, |o| {
                            o.roles.remove(name);
                        });
                    }
                    self.default_roles.remove(name);
                }
            }
            Kind::RoleBinding => {
                if let Some(old) = self.bindings.remove(name) {
                    self.unfile(&old.spec.account, |o| o.unfile_binding(&old.spec, name));
                    remove_from(&mut self.role_bindings, &old.spec.role, name);
                    if let Some(member) = &old.spec.member {
                        remove_from(&mut self.member_bindings, member, name);
                    }
                    if let Some(team) = &old.spec.team {
                        remove_from(&mut self.team_bindings, team, name);
                    }
                }
            }
        }
    }

    fn insert(&mut self, entry: Entry) {
        let name = SmolStr::from(entry.name());
        self.remove(entry.kind(), &name);
        match entry {
            Entry::Account(a) => {
                self.file(&name);
                self.accounts.insert(name, Box::new(a));
            }
            Entry::Member(m) => {
                self.file(&m.spec.account).members.insert(name.clone());
                if let Some(identity) = &m.spec.identity {
                    self.identities
                        .entry(identity.into())
                        .or_default()
                        .insert(name.clone());
                }
                self.members.insert(name, Box::new(m));
            }
            Entry::Team(t) => {
                self.file(&t.spec.account).teams.insert(name.clone());
                for member in &t.spec.members {
                    self.member_teams
                        .entry(member.into())
                        .or_default()
                        .insert(name.clone());
                }
                self.teams.insert(name, Box::new(t));
            }
            Entry::Role(r) => {
                match &r.spec.account {
                    Some(account) => {
                        self.file(account).roles.insert(name.clone());
                    }
                    None if r.spec.default => {
                        self.default_roles.insert(name.clone());
                    }
                    None => {}
                }
                self.roles.insert(name, Box::new(r));
            }
            Entry::RoleBinding(b) => {
                let spec = &b.spec;
                self.file(&spec.account)
                    .binding_set(spec)
                    .insert(name.clone());
                self.role_bindings
                    .entry(spec.role.clone())
                    .or_default()
                    .insert(name.clone());
                if let Some(member) = &spec.member {
                    self.member_bindings
                        .entry(member.clone())
                        .or_default()
                        .insert(name.clone());
                }
                if let Some(team) = &spec.team {
                    self.team_bindings
                        .entry(team.clone())
                        .or_default()
                        .insert(name.clone());
                }
                self.bindings.insert(name, Box::new(b));
            }
        }
    }
}

/// A set of names a name can be taken out of: [`Names`], or a `BTreeSet` for the few large ones
/// (the bindings of each role).
trait Shrinks {
    /// Removes `name`; whether the set is empty afterwards.
    fn take(&mut self, name: &str) -> bool;
}

impl Shrinks for Names {
    fn take(&mut self, name: &str) -> bool {
        self.remove(name);
        self.is_empty()
    }
}

impl Shrinks for BTreeSet<SmolStr> {
    fn take(&mut self, name: &str) -> bool {
        self.remove(name);
        self.is_empty()
    }
}

fn remove_from(map: &mut HashMap<SmolStr, impl Shrinks>, key: &str, name: &str) {
    if map.get_mut(key).is_some_and(|set| set.take(name)) {
        map.remove(key);
    }
}

/// All namespaces. Writes are `apply` and `delete`; reads evaluate one account at a time.
#[derive(Debug, Default)]
pub struct Index {
    namespaces: HashMap<String, Namespace>,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces an object, keeping only what the rules read (its [`Entry`]). Returns
    /// the accounts whose evaluation may have changed.
    pub fn apply(&mut self, object: Object) -> BTreeSet<AccountKey> {
        let namespace = object.namespace();
        self.apply_entry(&namespace, object.into())
    }

    /// [`Index::apply`] for an object already slim: what an admission overlay restores.
    pub fn apply_entry(&mut self, namespace: &str, entry: Entry) -> BTreeSet<AccountKey> {
        let (kind, name) = (entry.kind(), entry.name().to_owned());
        let mut touched = self.affected(namespace, kind, &name);
        let ns = self.namespaces.entry(namespace.to_owned()).or_default();
        ns.insert(entry);
        touched.extend(self.affected(namespace, kind, &name));
        touched
    }

    /// Files an entry without working out whom it touches: for building a whole index at once.
    pub fn insert(&mut self, namespace: &str, entry: Entry) {
        // Most entries go to a namespace already there: look it up before allocating its name.
        match self.namespaces.get_mut(namespace) {
            Some(ns) => ns.insert(entry),
            None => self
                .namespaces
                .entry(namespace.to_owned())
                .or_default()
                .insert(entry),
        }
    }

    /// Removes an object. Returns the accounts whose evaluation may have changed.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> BTreeSet<AccountKey> {
        let touched = self.affected(namespace, kind, name);
        if let Some(ns) = self.namespaces.get_mut(namespace) {
            ns.remove(kind, name);
            if ns.accounts.is_empty()
                && ns.members.is_empty()
                && ns.teams.is_empty()
                && ns.roles.is_empty()
                && ns.bindings.is_empty()
            {
                self.namespaces.remove(namespace);
            }
        }
        touched
    }

    /// Drops everything: a re-list starts from scratch.
    pub fn clear(&mut self) {
        self.namespaces.clear();
    }

    pub fn namespace(&self, namespace: &str) -> Option<&Namespace> {
        self.namespaces.get(namespace)
    }

    /// Every account that has an Account object or is named by another object.
    pub fn accounts(&self) -> impl Iterator<Item = AccountKey> + '_ {
        self.namespaces.iter().flat_map(|(ns, n)| {
            n.by_account
                .keys()
                .map(move |a| AccountKey::new(ns.clone(), a.clone()))
        })
    }

    /// Every role, for role status.
    pub fn roles(&self) -> impl Iterator<Item = (&str, &Role)> {
        self.namespaces
            .iter()
            .flat_map(|(ns, n)| n.roles.values().map(|r| (ns.as_str(), &**r)))
    }

    /// Names of the members and bindings filed under an account: what its evaluation writes to.
    pub fn account_objects(&self, key: &AccountKey) -> (Vec<String>, Vec<String>) {
        let Some(objects) = self
            .namespace(&key.namespace)
            .and_then(|ns| ns.account_objects(&key.account))
        else {
            return (Vec::new(), Vec::new());
        };
        let members = objects.members.iter().map(SmolStr::to_string).collect();
        let bindings = objects
            .bindings
            .values()
            .chain(objects.team_bindings.values())
            .flatten()
            .chain(&objects.unbound)
            .map(SmolStr::to_string)
            .collect();
        (members, bindings)
    }

    /// Names of the teams filed under an account.
    pub fn account_teams(&self, key: &AccountKey) -> Vec<String> {
        self.namespace(&key.namespace)
            .and_then(|ns| ns.account_objects(&key.account))
            .map(|o| o.teams.iter().map(SmolStr::to_string).collect())
            .unwrap_or_default()
    }

    /// Every `(namespace, name)` of one kind.
    pub fn names(&self, kind: Kind) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (ns, n) in &self.namespaces {
            let names: Vec<&SmolStr> = match kind {
                Kind::Account => n.accounts.keys().collect(),
                Kind::Member => n.members.keys().collect(),
                Kind::Team => n.teams.keys().collect(),
                Kind::Role => n.roles.keys().collect(),
                Kind::RoleBinding => n.bindings.keys().collect(),
            };
            out.extend(names.into_iter().map(|name| (ns.clone(), name.to_string())));
        }
        out
    }

    /// `role` and the roles that reach it through `includes`: whose status a role change moves.
    pub fn roles_including(&self, namespace: &str, role: &str) -> BTreeSet<String> {
        self.namespace(namespace)
            .map(|ns| self.including(ns, role))
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.namespaces
            .values()
            .map(|n| {
                n.accounts.len()
                    + n.members.len()
                    + n.teams.len()
                    + n.roles.len()
                    + n.bindings.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// The accounts an object's evaluation feeds into. A shared role feeds every account that
    /// binds it, and a shared default role every account of its namespace.
    fn affected(&self, namespace: &str, kind: Kind, name: &str) -> BTreeSet<AccountKey> {
        let mut out = BTreeSet::new();
        let Some(ns) = self.namespaces.get(namespace) else {
            return out;
        };
        let key = |a: &str| AccountKey::new(namespace, a);
        match kind {
            Kind::Account => {
                out.insert(key(name));
            }
            Kind::Member => {
                if let Some(m) = ns.member(name) {
                    out.insert(key(&m.spec.account));
                }
                // Bindings of other accounts may name this member (R8).
                let named_by = ns.member_bindings.get(name).into_iter().flatten();
                for b in named_by.filter_map(|b| ns.binding(b)) {
                    out.insert(key(&b.spec.account));
                }
                // Teams of other accounts may list it (R8, reported on the team).
                for t in ns.teams_of_member(name).filter_map(|t| ns.team(t)) {
                    out.insert(key(&t.spec.account));
                }
            }
            Kind::Team => {
                // The team's account, and every account whose bindings name it: a team change
                // moves the grants of the members it lists, all of them in those accounts.
                if let Some(t) = ns.team(name) {
                    out.insert(key(&t.spec.account));
                }
                for b in ns.bindings_of_team(name).filter_map(|b| ns.binding(b)) {
                    out.insert(key(&b.spec.account));
                }
            }
            Kind::RoleBinding => {
                if let Some(b) = ns.binding(name) {
                    out.insert(key(&b.spec.account));
                }
            }
            Kind::Role => {
                if let Some(account) = ns.role(name).and_then(|r| r.spec.account.as_deref()) {
                    out.insert(key(account));
                }
                // Roles that include this one change too, and so do the accounts that bind them,
                // or, for a default role, every account that can see it (R14).
                for including in self.including(ns, name) {
                    if let Some(r) = ns.role(&including).filter(|r| r.spec.default) {
                        match r.spec.account.as_deref() {
                            Some(account) => {
                                out.insert(key(account));
                            }
                            None => out.extend(ns.by_account.keys().map(|a| key(a))),
                        }
                    }
                    for b in ns
                        .bindings_of_role(&including)
                        .filter_map(|b| ns.binding(b))
                    {
                        out.insert(key(&b.spec.account));
                    }
                }
                // An account's successor role is a reference that may heal (R16).
                let successor_of = ns
                    .accounts
                    .iter()
                    .filter(|(_, a)| a.spec.ownership.successor_role.as_deref() == Some(name));
                out.extend(successor_of.map(|(n, _)| key(n)));
            }
        }
        out
    }

    /// `name` and every role that reaches it through `includes`.
    fn including(&self, ns: &Namespace, name: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::from([name.to_owned()]);
        let mut grew = true;
        while grew {
            grew = false;
            for (role_name, role) in &ns.roles {
                if !found.contains(role_name.as_str())
                    && role.spec.includes.iter().any(|i| found.contains(i))
                {
                    found.insert(role_name.to_string());
                    grew = true;
                }
            }
        }
        found
    }
}
