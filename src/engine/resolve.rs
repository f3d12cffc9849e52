//! What a role grants after following `includes` (R12): the roles it reaches and their
//! permissions. It reads roles through [`Roles`], so it depends on no particular view of the index.

use std::cell::RefCell;
use std::rc::Rc;

use foldhash::HashMap;

use super::name_set::NameSet;
use super::rule::Violation;
use super::rules::includes;
use super::slim::Role;

/// Where role resolution looks roles up: the index with a change laid over it.
pub(crate) trait Roles<'a> {
    fn role(&self, name: &str) -> Option<&'a Role>;
}

/// A role after following `includes`: the roles it reaches (itself included) and their
/// permissions. Broken includes grant nothing and are reported once, on the role.
#[derive(Debug, Default)]
pub struct Resolved<'a> {
    pub roles: NameSet<&'a str>,
    pub permissions: NameSet<&'a str>,
    pub problem: Option<Violation>,
}

/// Memoises role resolution for one evaluation: no cache to invalidate when roles change.
#[derive(Default)]
pub(crate) struct Resolver<'a> {
    memo: RefCell<HashMap<&'a str, Rc<Resolved<'a>>>>,
}

impl<'a> Resolver<'a> {
    pub fn resolve(&self, roles: &impl Roles<'a>, name: &'a str) -> Rc<Resolved<'a>> {
        if let Some(done) = self.memo.borrow().get(name) {
            return done.clone();
        }
        let mut found = Found::default();
        let mut path = Vec::new();
        walk(roles, name, &mut path, &mut found);
        let resolved = Rc::new(Resolved {
            roles: NameSet::from_unsorted(found.roles),
            permissions: NameSet::from_unsorted(found.permissions),
            problem: found.problem,
        });
        let mut memo = self.memo.borrow_mut();
        // A view resolves a handful of roles: one allocation instead of growing 3, 7, 14.
        if memo.capacity() == 0 {
            memo.reserve(16);
        }
        memo.insert(name, resolved.clone());
        resolved
    }
}

/// What a walk collects, in the order it finds it.
#[derive(Default)]
struct Found<'a> {
    roles: Vec<&'a str>,
    permissions: Vec<&'a str>,
    problem: Option<Violation>,
}

fn walk<'a>(roles: &impl Roles<'a>, name: &'a str, path: &mut Vec<&'a str>, out: &mut Found<'a>) {
    if path.contains(&name) {
        if out.problem.is_none() {
            let mut cycle: Vec<&str> = path.iter().skip_while(|n| **n != name).copied().collect();
            cycle.push(name);
            out.problem = Some(includes::cycle(&cycle));
        }
        return;
    }
    let Some(role) = roles.role(name) else { return };
    if out.roles.contains(&name) {
        return;
    }
    out.roles.push(name);
    out.permissions
        .extend(role.spec.permissions.iter().map(String::as_str));
    path.push(name);
    for included in &role.spec.includes {
        match roles.role(included) {
            None => {
                if out.problem.is_none() {
                    out.problem = Some(includes::missing(name, included));
                }
            }
            Some(target) if !includes::visible(role, target) => {
                if out.problem.is_none() {
                    out.problem = Some(includes::invisible(name, role, included, target));
                }
            }
            Some(_) => walk(roles, included, path, out),
        }
    }
    path.pop();
}
