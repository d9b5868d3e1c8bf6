//! The histories a warm Lambda container last saw, per contact: a hint that saves the
//! turn's read (a DynamoDB `Query`, about a third of a turn's CPU), never the truth.
//!
//! Why a stale hint is safe: every append is conditional on the stream's version
//! ([`super::EventStore::append`]), so a decision taken on a stale history cannot be written;
//! the store answers `Conflict`, the entry is dropped and the turn re-reads. A decision that
//! writes nothing (a replay) is never answered from a hint: the turn re-reads first
//! ([`crate::app`]). Connect may send a call's turns to different containers; each one's hint
//! then goes stale and costs one conflict, no more.

use super::History;
use crate::domain::ContactId;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Calls kept by default: a container serves one invocation at a time, so a few calls in
/// flight at once is plenty; 64 calls of ~2.5 KB each bound the memory at ~160 KB.
pub const DEFAULT_WARM_CALLS: usize = 64;

/// At most `capacity` contacts' histories, the least recently stored dropped first.
#[derive(Debug)]
pub struct WarmHistories {
    capacity: usize,
    entries: Mutex<VecDeque<(ContactId, History)>>,
}

impl WarmHistories {
    pub fn new(capacity: usize) -> Self {
        WarmHistories {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(ContactId, History)>> {
        // A panic while holding the lock cannot leave the deque inconsistent: take it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The history last stored for `contact_id`, if any.
    pub fn get(&self, contact_id: &ContactId) -> Option<History> {
        self.lock()
            .iter()
            .find(|(c, _)| c == contact_id)
            .map(|(_, h)| h.clone())
    }

    /// Stores `history` as the latest for `contact_id`.
    pub fn put(&self, contact_id: &ContactId, history: History) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if let Some(i) = entries.iter().position(|(c, _)| c == contact_id) {
            entries.remove(i);
        }
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((contact_id.clone(), history));
    }

    /// Forgets `contact_id` (after a conflict, or when its call is over).
    pub fn forget(&self, contact_id: &ContactId) {
        let mut entries = self.lock();
        if let Some(i) = entries.iter().position(|(c, _)| c == contact_id) {
            entries.remove(i);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ContactId {
        ContactId::parse(&format!("00000000-0000-0000-0000-{n:012}")).expect("id")
    }

    #[test]
    fn it_keeps_the_latest_and_drops_the_oldest() {
        let warm = WarmHistories::new(2);
        warm.put(&id(1), History::from(vec![]));
        warm.put(&id(2), History::from(vec![]));
        warm.put(&id(1), History::from(vec![]));
        warm.put(&id(3), History::from(vec![]));
        assert!(
            warm.get(&id(1)).is_some(),
            "1 was stored again, so 2 is the oldest"
        );
        assert!(warm.get(&id(2)).is_none());
        assert!(warm.get(&id(3)).is_some());
        assert_eq!(warm.len(), 2);
        warm.forget(&id(3));
        assert!(warm.get(&id(3)).is_none());
        let none = WarmHistories::new(0);
        none.put(&id(1), History::from(vec![]));
        assert!(none.is_empty());
    }
}
