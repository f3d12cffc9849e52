//! Per-account content versions and the evaluation made of each version: a change to an account
//! of n objects costs one evaluation, not n, however many of its objects reconcile.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use crate::engine::{AccountEvaluation, AccountKey, Timestamp};

/// Evaluations kept at most; the oldest go first. A burst reconciles an account's objects close
/// together (bulk passes move every kind through the accounts together, a few hundred objects
/// apart: see `triggers`), and the watch events of the controller's own status writes reconcile
/// nothing (see `kept::Records::wrote`), so a window this wide serves them all while bounding
/// memory at scale: an account of 15 objects evaluates to about 16 KB, so this is about 4 MB.
pub const KEEP: usize = 256;

/// One version's evaluation, made once by whichever reconcile asks first; the others wait for it.
pub type Cell = Arc<OnceLock<Arc<AccountEvaluation>>>;

#[derive(Debug, Default)]
pub struct Memo {
    versions: HashMap<AccountKey, u64>,
    evaluations: HashMap<AccountKey, (u64, Cell)>,
    order: VecDeque<(AccountKey, u64)>,
}

impl Memo {
    /// The account's current content version (0 until it first changes).
    pub fn version(&self, key: &AccountKey) -> u64 {
        self.versions.get(key).copied().unwrap_or(0)
    }

    /// The account changed: its evaluation is stale.
    pub fn bump(&mut self, key: &AccountKey) {
        *self.versions.entry(key.clone()).or_default() += 1;
        self.evaluations.remove(key);
    }

    /// The evaluation of the account's current version, if one was made and still holds at `now`.
    /// Makes no cell: for readers that would rather not evaluate (the decision API's checks).
    pub fn peek(&self, key: &AccountKey, now: Timestamp) -> Option<Arc<AccountEvaluation>> {
        let (held, cell) = self.evaluations.get(key)?;
        let current = *held == self.version(key);
        current
            .then(|| cell.get().filter(|e| e.holds_at(now)).cloned())
            .flatten()
    }

    /// The cell of the account's current version, new if none was made yet or if a window
    /// boundary (R18) has passed since it was made.
    pub fn cell(&mut self, key: &AccountKey, now: Timestamp) -> Cell {
        let version = self.version(key);
        if let Some((held, cell)) = self.evaluations.get(key)
            && *held == version
            && cell.get().is_none_or(|e| e.holds_at(now))
        {
            return cell.clone();
        }
        let cell = Cell::default();
        self.order.push_back((key.clone(), version));
        self.evaluations
            .insert(key.clone(), (version, cell.clone()));
        while self.evaluations.len() > KEEP {
            let Some((old, v)) = self.order.pop_front() else {
                break;
            };
            if self
                .evaluations
                .get(&old)
                .is_some_and(|(held, _)| *held == v)
            {
                self.evaluations.remove(&old);
            }
        }
        // Entries for evaluations already replaced or dropped.
        if self.order.len() > 2 * KEEP {
            let evaluations = &self.evaluations;
            self.order
                .retain(|(k, v)| evaluations.get(k).is_some_and(|(held, _)| held == v));
        }
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Index, evaluate_account};

    fn fill(memo: &mut Memo, key: &AccountKey) -> bool {
        let mut made = false;
        memo.cell(key, Timestamp::UNIX_EPOCH).get_or_init(|| {
            made = true;
            Arc::new(evaluate_account(&Index::new(), key, Timestamp::UNIX_EPOCH))
        });
        made
    }

    #[test]
    fn an_evaluation_serves_until_the_account_changes() {
        let key = AccountKey::new("team", "acme");
        let mut memo = Memo::default();
        assert!(fill(&mut memo, &key), "the first ask evaluates");
        assert!(!fill(&mut memo, &key), "the second reuses it");
        memo.bump(&key);
        assert!(fill(&mut memo, &key), "a change evaluates again");
    }

    #[test]
    fn a_peek_sees_only_a_current_evaluation_and_makes_none() {
        let key = AccountKey::new("team", "acme");
        let mut memo = Memo::default();
        assert!(memo.peek(&key, Timestamp::UNIX_EPOCH).is_none());
        assert!(memo.evaluations.is_empty(), "a peek makes no cell");
        fill(&mut memo, &key);
        assert!(memo.peek(&key, Timestamp::UNIX_EPOCH).is_some());
        memo.bump(&key);
        assert!(
            memo.peek(&key, Timestamp::UNIX_EPOCH).is_none(),
            "stale after a change"
        );
    }

    #[test]
    fn the_oldest_evaluations_go_first() {
        let mut memo = Memo::default();
        let keys: Vec<AccountKey> = (0..KEEP + 2)
            .map(|i| AccountKey::new("team", format!("a{i}")))
            .collect();
        for key in &keys {
            fill(&mut memo, key);
        }
        assert!(fill(&mut memo, &keys[0]), "evicted");
        assert!(!fill(&mut memo, &keys[KEEP + 1]), "kept");
    }
}
