//! A [`FileStore`] that fails on demand: a write that fails, a commit (sync) that fails, and a
//! commit torn by a crash at a chosen byte, after which the process must restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use mqtt_proto::{PacketId, TopicFilter};
use mqtt_session::store::{
    OutgoingRecord, QueuedRecord, SessionStore, StoredSession, SubscriptionRecord,
};
use mqtt_session::{FileStore, PublishToken, StoreError};

/// The faults armed for the next operations, and what happened.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next write (put, remove or clear) fails without being recorded.
    pub fail_write: bool,
    /// The next commit fails without writing anything; its records stay pending.
    pub fail_commit: bool,
    /// The process dies in the middle of the next commit: the log keeps only this many of the
    /// bytes the commit appended (modulo their number plus one).
    pub tear_commit: Option<usize>,
    /// Commits that returned `Ok`.
    pub commits_ok: u64,
    /// A commit was torn: the process is dead and must restart before anything else.
    pub crashed: bool,
    /// Faults that fired.
    pub writes_failed: u64,
    pub commits_failed: u64,
    pub commits_torn: u64,
    /// Bytes the last torn commit had written before the crash cut them.
    pub torn_appended: u64,
}

/// Shared between the simulation and the store it gave the session.
pub type SharedFaults = Arc<Mutex<Faults>>;

pub fn lock(faults: &SharedFaults) -> MutexGuard<'_, Faults> {
    faults.lock().unwrap_or_else(|e| e.into_inner())
}

/// The real store with faults injected in front of it.
pub struct FaultyStore {
    inner: FileStore,
    log: PathBuf,
    faults: SharedFaults,
}

impl FaultyStore {
    pub fn new(inner: FileStore, dir: PathBuf, faults: SharedFaults) -> Self {
        Self {
            inner,
            log: dir.join("log"),
            faults,
        }
    }

    fn write(
        &mut self,
        op: impl FnOnce(&mut FileStore) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        {
            let mut faults = lock(&self.faults);
            if faults.crashed {
                return Err(StoreError::Io("the process is dead".into()));
            }
            if std::mem::take(&mut faults.fail_write) {
                faults.writes_failed += 1;
                return Err(StoreError::Io("injected: write failed".into()));
            }
        }
        op(&mut self.inner)
    }
}

impl SessionStore for FaultyStore {
    fn put_outgoing(&mut self, record: &OutgoingRecord) -> Result<(), StoreError> {
        self.write(|s| s.put_outgoing(record))
    }

    fn remove_outgoing(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.write(|s| s.remove_outgoing(packet_id))
    }

    fn put_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.write(|s| s.put_incoming(packet_id))
    }

    fn remove_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.write(|s| s.remove_incoming(packet_id))
    }

    fn put_queued(&mut self, record: &QueuedRecord) -> Result<(), StoreError> {
        self.write(|s| s.put_queued(record))
    }

    fn remove_queued(&mut self, token: PublishToken) -> Result<(), StoreError> {
        self.write(|s| s.remove_queued(token))
    }

    fn put_subscription(&mut self, record: &SubscriptionRecord) -> Result<(), StoreError> {
        self.write(|s| s.put_subscription(record))
    }

    fn remove_subscription(&mut self, filter: &TopicFilter) -> Result<(), StoreError> {
        self.write(|s| s.remove_subscription(filter))
    }

    fn load(&mut self) -> Result<StoredSession, StoreError> {
        self.inner.load()
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.write(|s| s.clear())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let mut faults = lock(&self.faults);
        if faults.crashed {
            return Err(StoreError::Io("the process is dead".into()));
        }
        if std::mem::take(&mut faults.fail_commit) {
            faults.commits_failed += 1;
            return Err(StoreError::Io("injected: sync failed".into()));
        }
        if let Some(keep) = faults.tear_commit.take() {
            // The commit writes its bytes whole, then the crash cuts the file back to a
            // prefix of them: what a write torn by a power cut leaves.
            let before = std::fs::metadata(&self.log).map_or(0, |m| m.len());
            let result = self.inner.commit();
            let after = std::fs::metadata(&self.log).map_or(0, |m| m.len());
            if result.is_ok() && after > before {
                let appended = after - before;
                faults.torn_appended = appended;
                let keep = keep as u64 % (appended + 1);
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.log)
                    .and_then(|f| f.set_len(before + keep));
                assert!(file.is_ok(), "tear the log: {file:?}");
            }
            faults.commits_torn += 1;
            faults.crashed = true;
            return Err(StoreError::Io("injected: crashed in commit".into()));
        }
        let result = self.inner.commit();
        if result.is_ok() {
            faults.commits_ok += 1;
        }
        result
    }
}
