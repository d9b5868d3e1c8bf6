//! In-memory event store: for tests and benchmarks. Same contract as the others, the
//! 16 KiB event cap included.

use super::{check_batch, check_event_size, ContactId, EventStore, History, StoreError};
use crate::domain::Event;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryStore {
    streams: Mutex<HashMap<ContactId, History>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContactId, History>> {
        // A panic while holding the lock cannot leave a half-appended stream (appends are
        // one `extend`), so a poisoned lock is still consistent.
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every contact id with at least one event.
    pub fn contacts(&self) -> Vec<ContactId> {
        let mut ids: Vec<ContactId> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    /// Lends the stream (no copy).
    async fn load(&self, contact_id: &ContactId) -> Result<History, StoreError> {
        Ok(self.lock().get(contact_id).cloned().unwrap_or_default())
    }

    async fn append(
        &self,
        contact_id: &ContactId,
        expected_version: u64,
        events: Vec<Event>,
    ) -> Result<(), StoreError> {
        check_batch(expected_version, &events)?;
        events.iter().try_for_each(check_event_size)?;
        let mut streams = self.lock();
        let current = streams.get(contact_id).map_or(0, |s| s.len() as u64);
        if current != expected_version {
            return Err(StoreError::Conflict {
                contact_id: contact_id.to_string(),
                expected: expected_version,
            });
        }
        // The id is copied only for a new stream.
        match streams.get_mut(contact_id) {
            Some(stream) => stream.extend(events),
            None => {
                let mut stream = History::default();
                stream.extend(events);
                streams.insert(contact_id.clone(), stream);
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}
