//! What a role grants after following `includes` (R12): the roles it reaches and their
//! permissions. It reads roles through [`Roles`], so it depends on no particular view of the index.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use foldhash::HashMap;

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
    pub roles: BTreeSet<&'a str>,
    pub permissions: BTreeSet<&'a str>,
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
        let mut resolved = Resolved::default();
        let mut path = Vec::new();
        walk(roles, name, &mut path, &mut resolved);
        let resolved = Rc::new(resolved);
        self.memo.borrow_mut().insert(name, resolved.clone());
        resolved
    }
}

fn walk<'a>(
    roles: &impl Roles<'a>,
    name: &'a str,
    path: &mut Vec<&'a str>,
    out: &mut Resolved<'a>,
) {
    if path.contains(&name) {
        if out.problem.is_none() {
            let mut cycle: Vec<&str> = path.iter().skip_while(|n| **n != name).copied().collect();
            cycle.push(name);
            out.problem = Some(includes::cycle(&cycle));
        }
        return;
    }
    let Some(role) = roles.role(name) else { return };
    if !out.roles.insert(name) {
        return;
    }
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
