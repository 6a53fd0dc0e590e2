//! A [`SessionStore`] in a directory: one small file per flow, written to a temporary name,
//! synced and renamed into place, so a crash leaves either the old or the new record.
//!
//! Outgoing records (`out-<packet id>`) hold the PUBLISH encoded as MQTT 5.0 (which can carry
//! every field of the model), after a header: magic `MQS1`, send sequence (u64), token (u64)
//! and state (u8). Queued messages (`queue-<token>`) hold the magic `MQQ1` and the token
//! (u64), then the message as a 5.0 PUBLISH whose packet identifier is a placeholder (1).
//! Incoming QoS 2 identifiers are empty files (`in-<packet id>`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use mqtt_proto::{Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, QosPid};

use super::{OutgoingRecord, OutgoingState, QueuedRecord, SessionStore, StoreError, StoredSession};
use crate::event::PublishToken;
use crate::message::Message;

const MAGIC: &[u8; 4] = b"MQS1";
const HEADER_LEN: usize = 4 + 8 + 8 + 1;
const QUEUED_MAGIC: &[u8; 4] = b"MQQ1";
const QUEUED_HEADER_LEN: usize = 4 + 8;

/// File name prefixes of the three kinds of record.
const OUTGOING: &str = "out-";
const INCOMING: &str = "in-";
const QUEUED: &str = "queue-";

/// The packet identifier written into queued records, which have none yet.
const PLACEHOLDER_ID: PacketId = PacketId::MIN;

/// Session state kept in files under one directory.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    sync: bool,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl FileStore {
    /// Opens (creating if needed) the store in `dir`. Writes are synced to disk.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io)?;
        Ok(Self { dir, sync: true })
    }

    /// Turns syncing to disk on or off. Off survives a process crash but not a power loss.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    fn outgoing_path(&self, id: PacketId) -> PathBuf {
        self.dir.join(format!("{OUTGOING}{:05}", id.get()))
    }

    fn incoming_path(&self, id: PacketId) -> PathBuf {
        self.dir.join(format!("{INCOMING}{:05}", id.get()))
    }

    fn queued_path(&self, token: PublishToken) -> PathBuf {
        self.dir.join(format!("{QUEUED}{:020}", token.0))
    }

    fn write_atomically(&self, path: &Path, data: &[u8]) -> Result<(), StoreError> {
        let tmp = path.with_extension("tmp");
        let mut file = fs::File::create(&tmp).map_err(io)?;
        file.write_all(data).map_err(io)?;
        if self.sync {
            file.sync_all().map_err(io)?;
        }
        drop(file);
        fs::rename(&tmp, path).map_err(io)?;
        if self.sync {
            if let Ok(dir) = fs::File::open(&self.dir) {
                // Persists the rename; not every platform can sync a directory.
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<(), StoreError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    fn encode(record: &OutgoingRecord) -> Result<Vec<u8>, StoreError> {
        let mut buf = BytesMut::with_capacity(HEADER_LEN + record.publish.payload.len() + 64);
        buf.put_slice(MAGIC);
        buf.put_u64(record.seq);
        buf.put_u64(record.token.0);
        buf.put_u8(match record.state {
            OutgoingState::Published => 1,
            OutgoingState::Released => 2,
        });
        Packet::Publish(record.publish.clone())
            .encode(ProtocolVersion::V5, &mut buf)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(buf.to_vec())
    }

    fn decode(data: Vec<u8>) -> Result<OutgoingRecord, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(what.to_string());
        let header = data
            .get(..HEADER_LEN)
            .ok_or_else(|| corrupt("short record"))?;
        let (magic, rest) = header.split_at(4);
        if magic != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let (seq, rest) = rest.split_at(8);
        let (token, state) = rest.split_at(8);
        let seq = u64::from_be_bytes(seq.try_into().map_err(|_| corrupt("seq"))?);
        let token = u64::from_be_bytes(token.try_into().map_err(|_| corrupt("token"))?);
        let state = match state.first() {
            Some(1) => OutgoingState::Published,
            Some(2) => OutgoingState::Released,
            _ => return Err(corrupt("bad state")),
        };
        let frame = Bytes::from(data).slice(HEADER_LEN..);
        match Decoder::new(ProtocolVersion::V5).decode_frame(&frame) {
            Ok(Packet::Publish(publish)) if publish.packet_id().is_some() => Ok(OutgoingRecord {
                seq,
                token: PublishToken(token),
                state,
                publish,
            }),
            Ok(_) => Err(corrupt("record is not a QoS 1/2 PUBLISH")),
            Err(e) => Err(StoreError::Corrupt(e.to_string())),
        }
    }

    fn encode_queued(record: &QueuedRecord) -> Result<Vec<u8>, StoreError> {
        let message = &record.message;
        let qos_pid = match message.qos {
            QoS::AtLeastOnce => QosPid::AtLeastOnce(PLACEHOLDER_ID),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(PLACEHOLDER_ID),
            QoS::AtMostOnce => {
                return Err(StoreError::Corrupt("QoS 0 message in the store".into()))
            }
        };
        let mut publish = Publish::new(message.topic.clone(), qos_pid, message.payload.clone());
        publish.retain = message.retain;
        publish.properties = message.properties.clone();
        let mut buf = BytesMut::with_capacity(QUEUED_HEADER_LEN + message.payload.len() + 64);
        buf.put_slice(QUEUED_MAGIC);
        buf.put_u64(record.token.0);
        Packet::Publish(publish)
            .encode(ProtocolVersion::V5, &mut buf)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(buf.to_vec())
    }

    fn decode_queued(data: Vec<u8>) -> Result<QueuedRecord, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(what.to_string());
        let header = data
            .get(..QUEUED_HEADER_LEN)
            .ok_or_else(|| corrupt("short queued record"))?;
        let (magic, token) = header.split_at(4);
        if magic != QUEUED_MAGIC {
            return Err(corrupt("bad magic"));
        }
        let token = u64::from_be_bytes(token.try_into().map_err(|_| corrupt("token"))?);
        let frame = Bytes::from(data).slice(QUEUED_HEADER_LEN..);
        match Decoder::new(ProtocolVersion::V5).decode_frame(&frame) {
            Ok(Packet::Publish(p)) if p.packet_id().is_some() => {
                let mut message = Message::with_topic(p.topic, p.payload).qos(p.qos_pid.qos());
                message.retain = p.retain;
                message.properties = p.properties;
                Ok(QueuedRecord {
                    token: PublishToken(token),
                    message,
                })
            }
            Ok(_) => Err(corrupt("queued record is not a QoS 1/2 PUBLISH")),
            Err(e) => Err(StoreError::Corrupt(e.to_string())),
        }
    }
}

impl SessionStore for FileStore {
    fn put_outgoing(&mut self, record: &OutgoingRecord) -> Result<(), StoreError> {
        let id = record
            .packet_id()
            .ok_or_else(|| StoreError::Corrupt("QoS 0 message in the store".into()))?;
        let data = Self::encode(record)?;
        self.write_atomically(&self.outgoing_path(id), &data)
    }

    fn remove_outgoing(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.remove(&self.outgoing_path(packet_id))
    }

    fn put_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.write_atomically(&self.incoming_path(packet_id), &[])
    }

    fn remove_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.remove(&self.incoming_path(packet_id))
    }

    fn put_queued(&mut self, record: &QueuedRecord) -> Result<(), StoreError> {
        let data = Self::encode_queued(record)?;
        self.write_atomically(&self.queued_path(record.token), &data)
    }

    fn remove_queued(&mut self, token: PublishToken) -> Result<(), StoreError> {
        self.remove(&self.queued_path(token))
    }

    fn load(&mut self) -> Result<StoredSession, StoreError> {
        let mut session = StoredSession::default();
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_prefix(OUTGOING) {
                if id.parse::<u16>().ok().and_then(PacketId::new).is_some() {
                    let data = fs::read(entry.path()).map_err(io)?;
                    session.outgoing.push(Self::decode(data)?);
                }
            } else if let Some(id) = name.strip_prefix(INCOMING) {
                if let Some(id) = id.parse::<u16>().ok().and_then(PacketId::new) {
                    session.incoming.push(id);
                }
            } else if let Some(token) = name.strip_prefix(QUEUED) {
                if token.parse::<u64>().is_ok() {
                    let data = fs::read(entry.path()).map_err(io)?;
                    session.queued.push(Self::decode_queued(data)?);
                }
            }
        }
        session.outgoing.sort_by_key(|r| r.seq);
        session.incoming.sort();
        session.queued.sort_by_key(|r| r.token);
        Ok(session)
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if [OUTGOING, INCOMING, QUEUED]
                .iter()
                .any(|p| name.starts_with(p))
            {
                self.remove(&entry.path())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_proto::{Publish, QosPid, TopicName};

    fn record(id: u16, seq: u64) -> OutgoingRecord {
        let pid = PacketId::new(id).unwrap();
        let mut publish = Publish::new(
            TopicName::new("a/b").unwrap(),
            QosPid::ExactlyOnce(pid),
            vec![1, 2, 3],
        );
        publish.properties.content_type = Some(mqtt_proto::MqttString::new("text/plain").unwrap());
        OutgoingRecord {
            seq,
            token: PublishToken(seq * 10),
            state: OutgoingState::Published,
            publish,
        }
    }

    #[test]
    fn records_survive_reopening_in_send_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path()).unwrap().sync(false);
        store.put_outgoing(&record(9, 2)).unwrap();
        store.put_outgoing(&record(3, 1)).unwrap();
        let mut released = record(5, 3);
        released.state = OutgoingState::Released;
        store.put_outgoing(&released).unwrap();
        store.put_incoming(PacketId::new(42).unwrap()).unwrap();
        drop(store);

        let mut reopened = FileStore::open(dir.path()).unwrap();
        let loaded = reopened.load().unwrap();
        assert_eq!(loaded.outgoing, vec![record(3, 1), record(9, 2), released]);
        assert_eq!(loaded.incoming, vec![PacketId::new(42).unwrap()]);

        reopened.remove_outgoing(PacketId::new(3).unwrap()).unwrap();
        reopened
            .remove_incoming(PacketId::new(42).unwrap())
            .unwrap();
        let loaded = reopened.load().unwrap();
        assert_eq!(loaded.outgoing.len(), 2);
        assert!(loaded.incoming.is_empty());
        reopened.clear().unwrap();
        assert_eq!(reopened.load().unwrap(), StoredSession::default());
    }

    fn queued(token: u64, qos: QoS) -> QueuedRecord {
        let mut message = Message::new("a/b", vec![token as u8; 3]).unwrap().qos(qos);
        message.retain = token.is_multiple_of(2);
        message.properties.content_type = Some(mqtt_proto::MqttString::new("text/plain").unwrap());
        QueuedRecord {
            token: PublishToken(token),
            message,
        }
    }

    #[test]
    fn queued_messages_survive_reopening_in_token_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path()).unwrap().sync(false);
        store
            .put_queued(&queued(10_000_000_000, QoS::AtLeastOnce))
            .unwrap();
        store.put_queued(&queued(9, QoS::ExactlyOnce)).unwrap();
        store.put_queued(&queued(12, QoS::AtLeastOnce)).unwrap();
        assert!(matches!(
            store.put_queued(&queued(13, QoS::AtMostOnce)),
            Err(StoreError::Corrupt(_))
        ));
        drop(store);

        let mut reopened = FileStore::open(dir.path()).unwrap();
        let loaded = reopened.load().unwrap();
        assert_eq!(
            loaded.queued,
            vec![
                queued(9, QoS::ExactlyOnce),
                queued(12, QoS::AtLeastOnce),
                queued(10_000_000_000, QoS::AtLeastOnce)
            ]
        );
        reopened.remove_queued(PublishToken(12)).unwrap();
        assert_eq!(reopened.load().unwrap().queued.len(), 2);
        reopened.clear().unwrap();
        assert_eq!(reopened.load().unwrap(), StoredSession::default());
    }

    #[test]
    fn corrupt_records_are_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("out-00007"), b"MQS1garbage").unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
        assert!(matches!(store.load(), Err(StoreError::Corrupt(_))));
        fs::remove_file(dir.path().join("out-00007")).unwrap();
        fs::write(dir.path().join("queue-00000000000000000003"), b"MQQ1\0\0").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Corrupt(_))));
    }
}
