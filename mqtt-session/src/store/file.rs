//! A [`SessionStore`] in a directory: an append-only log of checksummed records, written in
//! groups (one write and one sync per [`commit`](SessionStore::commit)), compacted as it grows,
//! and locked so that one store at a time uses the directory.
//!
//! # Files
//!
//! | name       | what |
//! |------------|------|
//! | `LOCK`     | empty; an open store holds an exclusive advisory lock on it |
//! | `log`      | the records, in write order |
//! | `log.tmp`  | a compaction in progress; removed at open |
//! | `corrupt/` | bytes that could not be read, one file per stretch (see below) |
//!
//! Other files in the directory are left alone, except those of the format before the log
//! (`out-<id>`, `in-<id>`, `queue-<token>` and their `.tmp`), which open migrates.
//!
//! # Records
//!
//! A record is a 16-byte header and a body; integers are big-endian.
//!
//! | bytes       | field |
//! |-------------|-------|
//! | `0..4`      | marker `MQL1` |
//! | `4..8`      | body length `n` (u32) |
//! | `8..12`     | CRC-32C of the body |
//! | `12..16`    | CRC-32C of the record's offset in the log (u64, not stored), then bytes `0..12` |
//! | `16..16+n`  | body: a kind byte, then the kind's fields |
//!
//! | kind | fields after the kind byte | meaning |
//! |------|----------------------------|---------|
//! | 1 | seq (u64), token (u64), state (u8: 1 published, 2 released), PUBLISH | put an outgoing flow, keyed by the PUBLISH's packet identifier |
//! | 2 | packet identifier (u16) | remove an outgoing flow |
//! | 3 | packet identifier (u16) | put an incoming QoS 2 identifier |
//! | 4 | packet identifier (u16) | remove an incoming QoS 2 identifier |
//! | 5 | token (u64), PUBLISH with packet identifier 1 as a placeholder | put a queued message |
//! | 6 | token (u64) | remove a queued message |
//! | 7 | none | clear everything |
//! | 8 | start (u64), how (u8: 1 appended by a commit, 2 rewritten whole) | commit: ends the batch of records that starts at offset `start` |
//! | 9 | confirmed (u8: 0 or 1), SUBSCRIBE with packet identifier 1 as a placeholder and one filter | put a subscription, keyed by its filter |
//! | 10 | filter length (u16), filter (UTF-8) | remove a subscription |
//! | 11 | as kind 1, with the message's deadline (u64, milliseconds since the Unix epoch) after the state | put an outgoing flow whose message expires |
//! | 12 | token (u64), deadline (u64, as in kind 11), PUBLISH as in kind 5 | put a queued message that expires |
//!
//! Kinds 11 and 12 carry when a 5.0 message expires (its Message Expiry Interval after it was
//! accepted, on the wall clock the session was given); they are written only for such
//! messages, so a log of messages without one stays readable by versions before them, and
//! records of kinds 1 and 5 load with no deadline.
//!
//! A PUBLISH or SUBSCRIBE is the packet encoded as MQTT 5.0, whatever version the session
//! speaks: 5.0 carries every field of the model (a subscription's No Local, Retain As Published
//! and Retain Handling options, its subscription identifier and user properties). A filter on
//! its own is written as MQTT writes strings. Replaying the records in order gives the state: a
//! put replaces the value under its key, a remove drops it, a clear drops every key. Because the
//! header CRC covers the body CRC, a changed byte anywhere in a record fails a checksum; because
//! it covers the offset, a record is valid only where it was written (a record quoted in a
//! payload does not resynchronise a scan unless it was crafted for that very offset).
//!
//! # Durability
//!
//! Each write (put, remove or clear) appends a record to a buffer in memory.
//! [`commit`](SessionStore::commit) adds a commit record and writes the buffer at the end of
//! the log with one `write_all` and, with [`sync`](FileStore::sync) on (the default), one
//! `sync_data`, and then returns `Ok`. Hence:
//!
//! - Every write before a successful commit survives a crash of the process and, with sync on,
//!   a loss of power (on a disk that honours flushes).
//! - Writes after the last successful commit are not in the file: a crash, or dropping the
//!   store, loses them (a drop is not a commit).
//! - A failed commit returns the error and keeps its records pending; none is reported as
//!   committed until a later commit succeeds. The next commit writes them again and, because
//!   after a failed write or sync the file's state is unknown (a failed `fsync` may leave the
//!   kernel's pages marked clean without being on disk), rewrites the whole log into a new file
//!   as compaction does. Bytes of a failed write are cut off the log where the file allows it;
//!   if a crash comes first they are an unfinished batch (see below): at most a prefix of the
//!   pending records, in write order, loads.
//! - On Unix a commit first checks that the path of the log still names the file the store
//!   holds open, so a neighbour that deleted or replaced the log (or the directory) causes an
//!   error, not a silent loss. The next commit then recreates the log from the open file.
//!
//! [`FileStore::open`] syncs everything it writes (the directory included), whatever `sync`
//! says afterwards.
//!
//! # Compaction
//!
//! The store keeps no payloads in memory: for each live key (a packet identifier, a token, or
//! a subscription's filter) it remembers the length of its record, which gives the live size
//! of the log. At open, and after a commit when the log is larger than both 1 MiB and twice
//! its live size, the store reads the log, replays it and writes the live records to
//! `log.tmp`, syncs it, renames it over `log` and syncs the directory. Compacting at twice the
//! live size bounds the log to about twice what it holds (plus 1 MiB and one batch), and since
//! each compaction follows at least as many bytes written as it rewrites, it at most doubles
//! the bytes written. The 1 MiB floor keeps a small session, whose
//! log holds a few kilobytes, from compacting every few commits; reading 1 MiB takes about a
//! millisecond.
//!
//! # What is set aside
//!
//! The log is read from the start at open and by each [`load`](SessionStore::load). Where no
//! valid record starts (no marker, a header or body checksum that does not match, a length past
//! the end of the file), the bytes from there to the next offset where a valid record starts
//! (a marker with matching checksums), or to the end of the log, are a bad stretch. So is a
//! record whose checksums match but whose body makes no sense (an unknown kind, a PUBLISH or
//! SUBSCRIBE that does not decode, a SUBSCRIBE of more than one filter, a filter that is not
//! one). What happens to the records after a bad stretch depends on where it is:
//!
//! - In a batch closed by a commit record and followed by a later commit record, or in a log
//!   rewritten whole (renamed into place only once synced, so never torn), the records were
//!   committed and the stretch is corruption: it is set aside alone and the records after it
//!   load, so one bad record costs only itself.
//! - After the last commit record (a commit that a crash interrupted, whose records were never
//!   committed), or in the batch that the last commit record closes if that batch was appended
//!   (power can fail during its sync with its end on disk and a part before it not), the batch
//!   may be unfinished: the records before the stretch load, a prefix of the writes in their
//!   order, and the stretch is set aside together with every record after it. Loading a record
//!   written after a lost one could apply, say, the removal of a queued message without the
//!   outgoing flow written before it. A torn write at the end of the log is this case with no
//!   records after it.
//!
//! A file of the old format that does not decode is set aside too. Each set-aside stretch is
//!
//! - copied into `corrupt/log@<offset>` (a file of the old format into `corrupt/<its name>`;
//!   `.1`, `.2`, ... is appended if the name is taken) and synced;
//! - reported once, by the next `load`, in [`StoredSession::set_aside`] with `source`
//!   `"<log path> at offset <n>"` (or the old file's path), the reason, and `kept_at`, the
//!   copy (`None` if copying failed);
//! - dropped from the log, which is rewritten without it.
//!
//! Every other record loads.
//!
//! # Locking
//!
//! [`FileStore::open`] takes an exclusive advisory lock on `LOCK` with [`File::try_lock`] and
//! holds it until the store is dropped: a second open of the directory, in this process or
//! another, fails with [`StoreError::Locked`]. The lock is advisory: a process that does not
//! take it is not stopped. A child process spawned between fork and exec shares the lock for a
//! moment (with every open file), so a store dropped then stays locked that moment longer:
//! open tries again for 155 ms before it reports `Locked`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_proto::{PacketId, TopicFilter};
use tracing::warn;

use super::{
    OutgoingRecord, QueuedRecord, SessionStore, SetAside, StoreError, StoredSession,
    SubscriptionRecord,
};
use crate::event::PublishToken;

mod legacy;
mod record;
#[cfg(test)]
mod tests;

use record::{Effect, Key, Op, Scanned, Scanner, Value, Write, HEADER_LEN};

/// The lock file.
const LOCK: &str = "LOCK";
/// The log.
const LOG: &str = "log";
/// A compaction in progress.
const LOG_TMP: &str = "log.tmp";
/// Where bytes that could not be read are kept.
const CORRUPT: &str = "corrupt";
/// Pauses between attempts to take a lock held by someone else: 155 ms in all.
const LOCK_RETRIES: [Duration; 5] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
];
/// The log is compacted only once it is larger than this (and than twice its live size).
const COMPACT_MIN: u64 = 1 << 20;

/// Session state kept in one directory: an append-only log of checksummed records, written
/// once per [`commit`](SessionStore::commit) (one write and, with [`sync`](Self::sync) on, one
/// `sync_data`), compacted as it grows, and locked against a second user of the directory.
///
/// Every write before a successful commit survives a crash of the process (and, with sync on,
/// a loss of power); writes after the last commit are lost with the process. A record that
/// cannot be read back (a write torn by a crash, or corrupted on disk) is copied into
/// `corrupt/`, reported once by [`load`](SessionStore::load) in
/// [`StoredSession::set_aside`], and dropped; every other record loads. The file format is
/// described at the top of this type's source file.
pub struct FileStore {
    dir: PathBuf,
    log_path: PathBuf,
    sync: bool,
    /// Holds the lock on `LOCK`; closing it releases the lock.
    _lock: File,
    log: File,
    /// Length of the committed records: where the next commit writes.
    log_len: u64,
    /// Records written since the last commit.
    pending: BytesMut,
    /// The length and effect of each pending record, in order.
    pending_records: Vec<(usize, Effect)>,
    /// Record length of each live key, committed or pending.
    live: BTreeMap<Key, u64>,
    /// The sum of `live`.
    live_bytes: u64,
    /// A commit failed: the file's state is unknown and the next commit rewrites the log.
    rewrite: bool,
    /// No compaction before the log is this long: [`COMPACT_MIN`], lowered by tests.
    compact_min: u64,
    /// No compaction before the log is this long either (raised after a compaction failed).
    compact_floor: u64,
    /// Records set aside and not reported by `load` yet.
    set_aside: Vec<SetAside>,
    /// A fault to inject into the next commit.
    #[cfg(test)]
    fault: Option<tests::Fault>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("sync", &self.sync)
            .field("log_len", &self.log_len)
            .field("pending_bytes", &self.pending.len())
            .field("live_records", &self.live.len())
            .field("live_bytes", &self.live_bytes)
            .finish_non_exhaustive()
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |e| StoreError::Io(format!("{}: {e}", path.display()))
}

/// Makes the entries of directory `path` durable (a created, renamed or removed file). Not
/// every platform can open a directory; Unix can.
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    if cfg!(unix) {
        File::open(path)
            .and_then(|dir| dir.sync_all())
            .map_err(io_at(path))
    } else {
        Ok(())
    }
}

fn remove_if_exists(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// The live records of a log, as replayed.
#[derive(Debug, Default)]
struct Replay {
    live: BTreeMap<Key, (Bytes, Value)>,
    /// Something in the log was set aside or missing: it needs rewriting.
    damaged: bool,
}

impl Replay {
    fn apply(&mut self, op: Op, body: Bytes) {
        match op {
            Op::Put(key, value) => {
                self.live.insert(key, (body, value));
            }
            Op::Remove(key) => {
                self.live.remove(&key);
            }
            Op::Clear => self.live.clear(),
            Op::Commit { .. } => {}
        }
    }

    /// Bytes the live records take in a log.
    fn live_bytes(&self) -> u64 {
        self.live
            .values()
            .map(|(body, _)| (HEADER_LEN + body.len()) as u64)
            .sum()
    }
}

impl FileStore {
    /// Opens (creating if needed) the store in `dir`: takes the lock, removes what an
    /// interrupted compaction left, migrates files of the old format, sets aside what cannot be
    /// read and compacts the log. Writes are synced to disk until [`sync`](Self::sync) says
    /// otherwise.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir.as_ref(), true)
    }

    /// Opens the store; `sync` off skips every sync, for tests.
    fn open_with(dir: &Path, sync: bool) -> Result<Self, StoreError> {
        let dir = dir.to_path_buf();
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let lock = lock(&dir)?;
        remove_if_exists(&dir.join(LOG_TMP))?;
        let log_path = dir.join(LOG);
        let (log, created) = match OpenOptions::new().read(true).write(true).open(&log_path) {
            Ok(log) => (log, false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let log = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&log_path)
                    .map_err(io_at(&log_path))?;
                (log, true)
            }
            Err(e) => return Err(io_at(&log_path)(e)),
        };
        let log_len = log.metadata().map_err(io_at(&log_path))?.len();
        let mut store = Self {
            dir,
            log_path,
            sync,
            _lock: lock,
            log,
            log_len,
            pending: BytesMut::new(),
            pending_records: Vec::new(),
            live: BTreeMap::new(),
            live_bytes: 0,
            rewrite: false,
            compact_min: COMPACT_MIN,
            compact_floor: 0,
            set_aside: Vec::new(),
            #[cfg(test)]
            fault: None,
        };
        if created && store.sync {
            sync_dir(&store.dir)?;
        }
        let mut replay = store.read_log(store.log_len)?;
        let old = legacy::find(&store.dir)?;
        for file in &old {
            let data = fs::read(&file.path).map_err(io_at(&file.path))?;
            match legacy::decode(file.kind, data.clone()) {
                Ok(Some(value)) => {
                    let key = value.key().ok_or_else(|| {
                        StoreError::Corrupt(format!("{}: no key", file.path.display()))
                    })?;
                    let mut body = BytesMut::new();
                    record::encode_body(&mut body, &value.put())?;
                    replay.live.insert(key, (body.freeze(), value));
                }
                Ok(None) => {}
                Err(reason) => {
                    let source = file.path.display().to_string();
                    store.keep(&file.name, source, &data, reason);
                }
            }
        }
        store.finish_setting_aside();
        if replay.damaged || !old.is_empty() || replay.live_bytes() != store.log_len {
            store.rewrite_log(&replay.live, false)?;
        } else {
            store.recount(&replay.live);
        }
        for file in &old {
            remove_if_exists(&file.path)?;
        }
        if !old.is_empty() && store.sync {
            sync_dir(&store.dir)?;
        }
        Ok(store)
    }

    /// Turns syncing to disk on or off. Off survives a process crash but not a power loss.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    // ----- reading -----

    /// The first `len` bytes of the log file.
    fn read_bytes(&mut self, len: u64) -> Result<Bytes, StoreError> {
        let io = io_at(&self.log_path);
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut log = &self.log;
        log.seek(SeekFrom::Start(0))
            .and_then(|_| log.take(len).read_to_end(&mut buf))
            .map_err(io)?;
        Ok(Bytes::from(buf))
    }

    /// Replays the first `len` bytes of the log, setting aside what cannot be read.
    fn read_log(&mut self, len: u64) -> Result<Replay, StoreError> {
        let bytes = self.read_bytes(len)?;
        let mut replay = Replay::default();
        let read = bytes.len() as u64;
        if read < len {
            replay.damaged = true;
            let source = format!("{} at offset {read}", self.log_path.display());
            let reason = format!(
                "the log ends at {read} bytes but {len} were written: someone truncated it"
            );
            warn!(%source, %reason, "session store record set aside");
            self.set_aside.push(SetAside {
                source,
                reason,
                kept_at: None,
            });
        }
        // Before `prefix_from`, every batch was closed by a later commit record: a bad stretch
        // there is corruption of committed records, and the records after it load. From there
        // on, the batch may be unfinished (after the last commit record, or in the batch that
        // the last one closes, if it was appended: power can fail with its end on disk and an
        // earlier part not), so only records before the first bad stretch load, a prefix of
        // the writes in their order, and the rest is set aside with it.
        let mut prefix_from = 0;
        for scanned in Scanner::new(bytes.clone(), 0) {
            if let Scanned::Record { pos, record, body } = scanned {
                if let Some(Op::Commit { start, rewritten }) = record::decode_commit(&body) {
                    let end = pos + record.len();
                    prefix_from = match rewritten {
                        true => end,
                        false => usize::try_from(start).map_or(pos, |start| start.min(pos)),
                    };
                }
            }
        }
        // The first bad stretch from `prefix_from` on, and how many records follow it.
        let mut cut: Option<(usize, String)> = None;
        let mut after_cut = 0;
        for scanned in Scanner::new(bytes.clone(), 0) {
            let (pos, end, reason) = match scanned {
                Scanned::Record { .. } if cut.is_some() => {
                    after_cut += 1;
                    continue;
                }
                Scanned::Record { pos, record, body } => match record::decode_body(&body) {
                    Ok(op) => {
                        replay.apply(op, body);
                        continue;
                    }
                    Err(reason) => (pos, pos + record.len(), reason),
                },
                Scanned::Bad { pos, bytes, reason } => (pos, pos + bytes.len(), reason),
            };
            replay.damaged = true;
            if pos < prefix_from {
                let stretch = bytes.get(pos..end).unwrap_or_default();
                self.keep_log_bytes(pos as u64, stretch, reason);
            } else {
                cut.get_or_insert((pos, reason));
            }
        }
        if let Some((pos, mut reason)) = cut {
            if after_cut > 0 {
                reason.push_str(&format!(
                    "; set aside with the {after_cut} valid records after it: the commit that \
                     wrote them may not have finished, and they must not load without it"
                ));
            }
            let stretch = bytes.get(pos..).unwrap_or_default();
            self.keep_log_bytes(pos as u64, stretch, reason);
        }
        if replay.damaged {
            self.finish_setting_aside();
        }
        Ok(replay)
    }

    fn keep_log_bytes(&mut self, offset: u64, bytes: &[u8], reason: String) {
        let source = format!("{} at offset {offset}", self.log_path.display());
        self.keep(&format!("{LOG}@{offset}"), source, bytes, reason);
    }

    /// Copies `bytes` into `corrupt/<name>` (or `<name>.<n>` if taken) and queues the report.
    fn keep(&mut self, name: &str, source: String, bytes: &[u8], reason: String) {
        let kept_at = match self.write_corrupt(name, bytes) {
            Ok(path) => Some(path),
            Err(e) => {
                warn!(%source, error = %e, "could not keep the bytes of a set-aside record");
                None
            }
        };
        warn!(%source, %reason, "session store record set aside");
        self.set_aside.push(SetAside {
            source,
            reason,
            kept_at,
        });
    }

    fn write_corrupt(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let dir = self.dir.join(CORRUPT);
        fs::create_dir_all(&dir)?;
        for n in 0..1000u32 {
            let path = match n {
                0 => dir.join(name),
                n => dir.join(format!("{name}.{n}")),
            };
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(bytes)?;
                    if self.sync {
                        file.sync_all()?;
                    }
                    return Ok(path);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "{name}: no free name in {}",
            dir.display()
        )))
    }

    /// Makes the copies in `corrupt/` durable before the log is rewritten without them.
    fn finish_setting_aside(&self) {
        if !self.sync {
            return;
        }
        let corrupt = self.dir.join(CORRUPT);
        if corrupt.is_dir() {
            for dir in [&corrupt, &self.dir] {
                if let Err(e) = sync_dir(dir) {
                    warn!(error = %e, "could not sync the copies of set-aside records");
                }
            }
        }
    }

    // ----- writing -----

    fn append(&mut self, write: Write<'_>) -> Result<(), StoreError> {
        let start = self.pending.len();
        let offset = self.log_len + start as u64;
        let effect = record::append(&mut self.pending, offset, &write)?;
        let len = self.pending.len() - start;
        self.account(&effect, len as u64);
        self.pending_records.push((len, effect));
        Ok(())
    }

    /// Updates the live sizes for a record of `len` bytes.
    fn account(&mut self, effect: &Effect, len: u64) {
        let old = match effect {
            Effect::Put(key) => {
                self.live_bytes += len;
                self.live.insert(key.clone(), len)
            }
            Effect::Remove(key) => self.live.remove(key),
            Effect::Clear => {
                self.live.clear();
                self.live_bytes = 0;
                None
            }
            Effect::Nothing => None,
        };
        self.live_bytes -= old.unwrap_or(0);
    }

    /// Recomputes the live sizes from the live records of the log, then the pending ones.
    fn recount(&mut self, live: &BTreeMap<Key, (Bytes, Value)>) {
        self.live = live
            .iter()
            .map(|(key, (body, _))| (key.clone(), (HEADER_LEN + body.len()) as u64))
            .collect();
        self.live_bytes = self.live.values().sum();
        for (len, effect) in std::mem::take(&mut self.pending_records) {
            self.account(&effect, len as u64);
            self.pending_records.push((len, effect));
        }
    }

    /// Writes `live` into a new log and renames it over the old one. `pending_included`
    /// says that the records pending are in `live` (they were written to the old log before it
    /// was read); otherwise they stay pending, moved to the end of the new log.
    fn rewrite_log(
        &mut self,
        live: &BTreeMap<Key, (Bytes, Value)>,
        pending_included: bool,
    ) -> Result<(), StoreError> {
        let tmp_path = self.dir.join(LOG_TMP);
        let written = self.write_tmp(&tmp_path, live);
        let renamed = written.and_then(|(tmp, len)| {
            fs::rename(&tmp_path, &self.log_path)
                .map(|()| (tmp, len))
                .map_err(io_at(&self.log_path))
        });
        let (tmp, len) = match renamed {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_file(&tmp_path);
                return Err(e);
            }
        };
        // The path names the new file from here on: appends go to it.
        self.log = tmp;
        self.log_len = len;
        if pending_included {
            self.pending.clear();
            self.pending_records.clear();
        } else {
            let lens = self.pending_records.iter().map(|(len, _)| *len);
            record::rebase(&mut self.pending, len, lens);
        }
        self.recount(live);
        self.compact_floor = 0;
        if self.sync {
            if let Err(e) = sync_dir(&self.dir) {
                // The rename may not be durable: rewrite again at the next commit.
                self.rewrite = true;
                return Err(e);
            }
        }
        self.rewrite = false;
        Ok(())
    }

    fn write_tmp(
        &self,
        path: &Path,
        live: &BTreeMap<Key, (Bytes, Value)>,
    ) -> Result<(File, u64), StoreError> {
        let io = io_at(path);
        let tmp = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 16, &tmp);
        let mut len = 0u64;
        for (body, _) in live.values() {
            let header = record::header_for(len, body)?;
            out.write_all(&header)
                .and_then(|()| out.write_all(body))
                .map_err(io_at(path))?;
            len += (HEADER_LEN + body.len()) as u64;
        }
        if len > 0 {
            let mut commit = BytesMut::new();
            let write = Write::Commit {
                start: 0,
                rewritten: true,
            };
            record::append(&mut commit, len, &write)?;
            out.write_all(&commit).map_err(io_at(path))?;
            len += commit.len() as u64;
        }
        out.flush().map_err(io_at(path))?;
        drop(out);
        if self.sync {
            tmp.sync_all().map_err(io_at(path))?;
        }
        Ok((tmp, len))
    }

    /// Rewrites the log with only its live records.
    fn compact(&mut self) -> Result<(), StoreError> {
        let replay = self.read_log(self.log_len)?;
        self.rewrite_log(&replay.live, false)
    }

    fn should_compact(&self) -> bool {
        self.log_len > self.compact_min.max(self.compact_floor)
            && self.log_len / 2 > self.live_bytes
    }

    /// Fails if the log's path no longer names the file the store writes.
    #[cfg(unix)]
    fn check_log_in_place(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::MetadataExt;
        let held = self.log.metadata().map_err(io_at(&self.log_path))?;
        match fs::metadata(&self.log_path) {
            Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => Ok(()),
            Ok(_) => Err(StoreError::Io(format!(
                "{}: replaced by another file",
                self.log_path.display()
            ))),
            Err(e) => Err(StoreError::Io(format!(
                "{}: {e} (removed by someone else?)",
                self.log_path.display()
            ))),
        }
    }

    #[cfg(not(unix))]
    fn check_log_in_place(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Writes the pending records at the end of the committed ones.
    fn write_pending(&mut self) -> Result<(), StoreError> {
        let mut log = &self.log;
        #[cfg(test)]
        if let Some(tests::Fault::ShortWrite) = self.fault {
            self.fault = None;
            let half = self
                .pending
                .get(..self.pending.len() / 2)
                .unwrap_or_default();
            log.seek(SeekFrom::Start(self.log_len))
                .and_then(|_| log.write_all(half))
                .map_err(io_at(&self.log_path))?;
            return Err(StoreError::Io("injected short write".into()));
        }
        log.seek(SeekFrom::Start(self.log_len))
            .and_then(|_| log.write_all(&self.pending))
            .map_err(io_at(&self.log_path))
    }

    /// A commit that appends the pending records and syncs them.
    fn commit_appending(&mut self) -> Result<(), StoreError> {
        self.check_log_in_place()?;
        let records = self.pending.len();
        let commit = Write::Commit {
            start: self.log_len,
            rewritten: false,
        };
        record::append(&mut self.pending, self.log_len + records as u64, &commit)?;
        let result = self.write_pending().and_then(|()| {
            #[cfg(test)]
            if let Some(tests::Fault::Sync) = self.fault {
                self.fault = None;
                return Err(StoreError::Io("injected sync failure".into()));
            }
            if self.sync {
                self.log.sync_data().map_err(io_at(&self.log_path))?;
            }
            Ok(())
        });
        if let Err(e) = result {
            // The records stay pending; the commit record is written anew by the next commit.
            self.pending.truncate(records);
            return Err(e);
        }
        self.log_len += self.pending.len() as u64;
        self.pending.clear();
        self.pending_records.clear();
        Ok(())
    }

    /// A commit after a failed one: appends the pending records to the open file (whatever
    /// its path names now), then rewrites the whole log from it into a new file.
    fn commit_rewriting(&mut self) -> Result<(), StoreError> {
        self.write_pending()?;
        let replay = self.read_log(self.log_len + self.pending.len() as u64)?;
        self.rewrite_log(&replay.live, true)
    }
}

fn lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_at(&path))?;
    // A child process that another thread spawns shares every open file of this one between
    // its fork and its exec, and with them their locks: a store dropped during that moment is
    // still locked. Try a few times before calling the directory taken.
    for pause in LOCK_RETRIES.into_iter().map(Some).chain([None]) {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => match pause {
                Some(pause) => std::thread::sleep(pause),
                None => break,
            },
            Err(TryLockError::Error(e)) => return Err(io_at(&path)(e)),
        }
    }
    Err(StoreError::Locked(dir.display().to_string()))
}

impl SessionStore for FileStore {
    fn put_outgoing(&mut self, record: &OutgoingRecord) -> Result<(), StoreError> {
        self.append(Write::PutOutgoing(record))
    }

    fn remove_outgoing(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.append(Write::RemoveOutgoing(packet_id))
    }

    fn put_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.append(Write::PutIncoming(packet_id))
    }

    fn remove_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.append(Write::RemoveIncoming(packet_id))
    }

    fn put_queued(&mut self, record: &QueuedRecord) -> Result<(), StoreError> {
        self.append(Write::PutQueued(record))
    }

    fn remove_queued(&mut self, token: PublishToken) -> Result<(), StoreError> {
        self.append(Write::RemoveQueued(token))
    }

    fn put_subscription(&mut self, record: &SubscriptionRecord) -> Result<(), StoreError> {
        self.append(Write::PutSubscription(record))
    }

    fn remove_subscription(&mut self, filter: &TopicFilter) -> Result<(), StoreError> {
        self.append(Write::RemoveSubscription(filter))
    }

    /// Reads the committed records from the log, then applies the pending ones: what a crash
    /// now would leave plus the writes since the last commit. Reports each record set aside
    /// (at open or now) once.
    fn load(&mut self) -> Result<StoredSession, StoreError> {
        let mut replay = self.read_log(self.log_len)?;
        if replay.damaged {
            // Drop what was set aside from the log, so it is not set aside again.
            if let Err(e) = self.rewrite_log(&replay.live, false) {
                warn!(error = %e, "could not rewrite the session log");
            }
        }
        let pending = Bytes::copy_from_slice(&self.pending);
        for scanned in Scanner::new(pending, self.log_len) {
            let op = match scanned {
                Scanned::Record { body, .. } => record::decode_body(&body).map(|op| (op, body)),
                Scanned::Bad { reason, .. } => Err(reason),
            };
            let (op, body) = op.map_err(StoreError::Corrupt)?;
            replay.apply(op, body);
        }
        // In key order: incoming identifiers and queued tokens ascending, subscriptions by
        // filter.
        let mut session = StoredSession::default();
        for (_, (_, value)) in replay.live {
            match value {
                Value::Outgoing(r) => session.outgoing.push(r),
                Value::Incoming(id) => session.incoming.push(id),
                Value::Queued(r) => session.queued.push(r),
                Value::Subscription(r) => session.subscriptions.push(r),
            }
        }
        session.outgoing.sort_by_key(|r| r.seq);
        session.set_aside = std::mem::take(&mut self.set_aside);
        Ok(session)
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.append(Write::Clear)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() && !self.rewrite {
            return Ok(());
        }
        let result = if self.rewrite {
            self.commit_rewriting()
        } else {
            self.commit_appending()
        };
        if let Err(e) = result {
            self.rewrite = true;
            // Cut off what the failed write left, so a crash now leaves only committed
            // records. Best effort: the next commit writes over it anyway.
            let _ = self.log.set_len(self.log_len);
            return Err(e);
        }
        if self.should_compact() {
            if let Err(e) = self.compact() {
                // The commit is durable in the old log; try again once it has grown more.
                warn!(error = %e, "could not compact the session log");
                self.compact_floor = self.log_len.saturating_add(self.compact_min.max(1));
            }
        }
        Ok(())
    }
}
