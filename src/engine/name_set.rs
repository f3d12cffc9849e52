//! A small set of object names, as the index files them: the members of an account, the
//! bindings of a member, the teams of a member. Most such sets hold a handful of names, and a
//! `BTreeSet<String>` allocates a whole node (about 280 bytes) for even one; a sorted vector holds
//! exactly what it has.

/// Names, sorted and without repeats. Inserting or removing shifts the names after it, so this is
/// for sets of tens or hundreds of names, not for one per role across a cluster.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NameSet(Vec<String>);

impl NameSet {
    /// Adds `name`; false if it was there.
    pub fn insert(&mut self, name: String) -> bool {
        match self.find(&name) {
            Ok(_) => false,
            Err(at) => {
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
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|n| n.as_str().cmp(name))
    }
}

impl<'a> IntoIterator for &'a NameSet {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::NameSet;

    #[test]
    fn a_name_set_is_a_sorted_set() {
        let mut set = NameSet::default();
        assert!(set.insert("b".into()));
        assert!(set.insert("a".into()));
        assert!(set.insert("c".into()));
        assert!(!set.insert("a".into()), "a repeat is not added");
        assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(set.contains("b") && !set.contains("d"));
        assert!(set.remove("b"));
        assert!(!set.remove("b"), "a name not there is not removed");
        assert_eq!((&set).into_iter().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(set.len(), 2);
        assert!(set.remove("a") && set.remove("c") && set.is_empty());
    }
}
