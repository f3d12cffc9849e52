//! What a role grants after following `includes` (R12): the roles it reaches and their
//! permissions. It reads roles through [`Roles`], so it depends on no particular view of the index.

use std::cell::RefCell;
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
    pub roles: Names<'a>,
    pub permissions: Names<'a>,
    pub problem: Option<Violation>,
}

/// A set of names as one sorted vector without repeats: a role reaches a handful of roles and
/// permissions, and every admission resolves the roles it meets, so building, comparing and
/// dropping them must be cheap (a `BTreeSet` allocates per node and compares by walking).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Names<'a>(Vec<&'a str>);

impl<'a> Names<'a> {
    fn from_unsorted(mut names: Vec<&'a str>) -> Self {
        names.sort_unstable();
        names.dedup();
        Self(names)
    }

    /// In order.
    pub fn iter(&self) -> impl Iterator<Item = &&'a str> {
        self.0.iter()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search(&name).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every name here is also in `other`: one merge of two sorted lists.
    pub fn is_subset(&self, other: &Names<'_>) -> bool {
        let mut theirs = other.0.iter();
        self.0.iter().all(|mine| theirs.any(|t| t == mine))
    }
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
            roles: Names::from_unsorted(found.roles),
            permissions: Names::from_unsorted(found.permissions),
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

#[cfg(test)]
mod tests {
    use super::Names;

    fn names<'a>(list: &[&'a str]) -> Names<'a> {
        Names::from_unsorted(list.to_vec())
    }

    #[test]
    fn names_are_a_sorted_set() {
        let n = names(&["b", "a", "c", "a"]);
        assert_eq!(n.iter().copied().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(n.len(), 3);
        assert!(n.contains("b") && !n.contains("d"));
        assert!(names(&[]).is_empty());
    }

    #[test]
    fn subset_is_judged_over_the_whole_of_both() {
        assert!(names(&["a", "c"]).is_subset(&names(&["a", "b", "c"])));
        assert!(names(&[]).is_subset(&names(&["a"])));
        assert!(names(&["a", "b"]).is_subset(&names(&["b", "a"])));
        assert!(!names(&["a", "d"]).is_subset(&names(&["a", "b", "c"])));
        assert!(!names(&["0", "a"]).is_subset(&names(&["a", "b"])));
        assert!(!names(&["a"]).is_subset(&names(&[])));
    }
}
