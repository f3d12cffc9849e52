//! A small set of names as one sorted vector without repeats: the index's sets (the members of
//! an account, the bindings of a member, the teams of a member) and what a role reaches after
//! `includes` (its roles and permissions). Most hold a handful of names; a `BTreeSet` allocates a
//! whole node (about 280 bytes for `String`s) for even one, and every admission builds, compares
//! and drops the resolved ones.

use std::borrow::Borrow;

/// Names, sorted and without repeats: owned (`String`, the index) or borrowed (`&str`, role
/// resolution). Inserting or removing shifts the names after it, so this is for sets of tens or
/// hundreds of names, not for one per role across a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSet<N = String>(Vec<N>);

/// Sets up to this many names grow one name at a time (see [`NameSet::insert`]).
const EXACT_UP_TO: usize = 8;

impl<N> Default for NameSet<N> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<N: Ord + Borrow<str>> NameSet<N> {
    /// The set of `names`, in any order and with repeats.
    pub fn from_unsorted(mut names: Vec<N>) -> Self {
        names.sort_unstable();
        names.dedup();
        Self(names)
    }

    /// Adds `name`; false if it was there. A small set grows by one name at a time: most of the
    /// index's sets hold one or two names (the bindings of a member, the members of a team), and
    /// a `Vec`'s first growth makes room for four (96 bytes of `SmolStr`s) whatever it holds; at
    /// 10,000 accounts that was 12 MiB of room for names never added. Past [`EXACT_UP_TO`] it
    /// grows by half, so a large set still costs amortized O(1) moves per insert.
    pub fn insert(&mut self, name: N) -> bool {
        match self.find(name.borrow()) {
            Ok(_) => false,
            Err(at) => {
                let len = self.0.len();
                if len == self.0.capacity() {
                    self.0
                        .reserve_exact(if len < EXACT_UP_TO { 1 } else { len / 2 });
                }
                self.0.insert(at, name);
                true
            }
        }
    }

    /// Removes `name`; false if it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.find(name) {
            Ok(at) => {
                self.0.remove(at);
                if self.0.capacity() > 2 * self.0.len() + 4 {
                    self.0.shrink_to_fit();
                }
                true
            }
            Err(_) => false,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// In order.
    pub fn iter(&self) -> std::slice::Iter<'_, N> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every name here is also in `other`: one merge of two sorted lists.
    pub fn is_subset<M: Borrow<str>>(&self, other: &NameSet<M>) -> bool {
        let mut theirs = other.0.iter();
        self.0
            .iter()
            .all(|mine| theirs.any(|t| t.borrow() == mine.borrow()))
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|n| n.borrow().cmp(name))
    }
}

impl<'a, N> IntoIterator for &'a NameSet<N> {
    type Item = &'a N;
    type IntoIter = std::slice::Iter<'a, N>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::NameSet;

    fn names<'a>(list: &[&'a str]) -> NameSet<&'a str> {
        NameSet::from_unsorted(list.to_vec())
    }

    #[test]
    fn a_name_set_is_a_sorted_set() {
        let mut set = NameSet::default();
        assert!(set.insert("b".to_owned()));
        assert!(set.insert("a".to_owned()));
        assert!(set.insert("c".to_owned()));
        assert!(!set.insert("a".to_owned()), "a repeat is not added");
        assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(set.contains("b") && !set.contains("d"));
        assert!(set.remove("b"));
        assert!(!set.remove("b"), "a name not there is not removed");
        assert_eq!((&set).into_iter().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(set.len(), 2);
        assert!(set.remove("a") && set.remove("c") && set.is_empty());
    }

    #[test]
    fn a_small_set_holds_no_room_for_names_it_does_not_have() {
        let mut set = NameSet::default();
        set.insert("b".to_owned());
        assert_eq!(set.0.capacity(), 1, "one name, room for one");
        set.insert("a".to_owned());
        assert_eq!(set.0.capacity(), 2);
        for i in 0..100 {
            set.insert(format!("n{i:03}"));
        }
        assert_eq!(set.len(), 102);
        assert!(
            set.0.capacity() < 2 * set.len(),
            "a large set grows by half: {}",
            set.0.capacity()
        );
        assert_eq!(set.iter().next().map(String::as_str), Some("a"));
    }

    #[test]
    fn names_from_any_order_are_a_sorted_set() {
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
