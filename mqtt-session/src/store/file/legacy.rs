//! The format before the log, read once to migrate it: one file per record.
//!
//! Outgoing records (`out-<packet id>`) hold magic `MQS1`, send sequence (u64), token (u64)
//! and state (u8: 1 published, 2 released), then the PUBLISH encoded as MQTT 5.0. Queued
//! messages (`queue-<token>`) hold magic `MQQ1` and the token (u64), then the message as a 5.0
//! PUBLISH whose packet identifier is a placeholder. Incoming QoS 2 identifiers are empty files
//! (`in-<packet id>`). Each was written to `<name>.tmp` and renamed into place.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use mqtt_proto::{Decoder, Packet, PacketId, ProtocolVersion};

use super::record::Value;
use crate::event::PublishToken;
use crate::message::Message;
use crate::store::{OutgoingRecord, OutgoingState, QueuedRecord, StoreError};

const MAGIC: &[u8; 4] = b"MQS1";
const HEADER_LEN: usize = 4 + 8 + 8 + 1;
const QUEUED_MAGIC: &[u8; 4] = b"MQQ1";
const QUEUED_HEADER_LEN: usize = 4 + 8;

/// File name prefixes of the three kinds of record.
const OUTGOING: &str = "out-";
const INCOMING: &str = "in-";
const QUEUED: &str = "queue-";

/// What an old file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Outgoing,
    Incoming(PacketId),
    Queued,
    /// A write that was interrupted before its rename: never part of the store.
    Temporary,
}

/// One file of the old format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LegacyFile {
    pub(super) path: PathBuf,
    pub(super) name: String,
    pub(super) kind: Kind,
}

fn kind_of(name: &str) -> Option<Kind> {
    if let Some(stem) = name.strip_suffix(".tmp") {
        return kind_of(stem).map(|_| Kind::Temporary);
    }
    if let Some(id) = name.strip_prefix(OUTGOING) {
        id.parse::<u16>()
            .ok()
            .and_then(PacketId::new)
            .map(|_| Kind::Outgoing)
    } else if let Some(id) = name.strip_prefix(INCOMING) {
        id.parse::<u16>()
            .ok()
            .and_then(PacketId::new)
            .map(Kind::Incoming)
    } else if let Some(token) = name.strip_prefix(QUEUED) {
        token.parse::<u64>().ok().map(|_| Kind::Queued)
    } else {
        None
    }
}

/// The old format's files in `dir`, in name order. Other entries are left alone.
pub(super) fn find(dir: &Path) -> Result<Vec<LegacyFile>, StoreError> {
    let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", dir.display()));
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(kind) = kind_of(&name) else { continue };
        if !entry.file_type().map_err(io)?.is_file() {
            continue;
        }
        found.push(LegacyFile {
            path: entry.path(),
            name,
            kind,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// What an old file holds: `Ok(None)` for a temporary file, `Err` with the reason for one
/// whose content makes no sense.
pub(super) fn decode(kind: Kind, data: Vec<u8>) -> Result<Option<Value>, String> {
    Ok(Some(match kind {
        Kind::Outgoing => Value::Outgoing(decode_outgoing(data)?),
        Kind::Incoming(id) => Value::Incoming(id),
        Kind::Queued => Value::Queued(decode_queued(data)?),
        Kind::Temporary => return Ok(None),
    }))
}

fn decode_outgoing(data: Vec<u8>) -> Result<OutgoingRecord, String> {
    let header = data.get(..HEADER_LEN).ok_or("short record")?;
    let (magic, rest) = header.split_first_chunk::<4>().ok_or("short record")?;
    if magic != MAGIC {
        return Err("bad magic".into());
    }
    let (seq, rest) = rest.split_first_chunk::<8>().ok_or("short record")?;
    let (token, state) = rest.split_first_chunk::<8>().ok_or("short record")?;
    let state = match state.first() {
        Some(1) => OutgoingState::Published,
        Some(2) => OutgoingState::Released,
        _ => return Err("bad state".into()),
    };
    let (seq, token) = (u64::from_be_bytes(*seq), u64::from_be_bytes(*token));
    let frame = Bytes::from(data).slice(HEADER_LEN..);
    match Decoder::new(ProtocolVersion::V5).decode_frame(&frame) {
        Ok(Packet::Publish(publish)) if publish.packet_id().is_some() => Ok(OutgoingRecord {
            seq,
            token: PublishToken(token),
            state,
            publish,
            // The old format kept no deadlines.
            expires_at: None,
        }),
        Ok(_) => Err("record is not a QoS 1/2 PUBLISH".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn decode_queued(data: Vec<u8>) -> Result<QueuedRecord, String> {
    let header = data.get(..QUEUED_HEADER_LEN).ok_or("short queued record")?;
    let (magic, token) = header
        .split_first_chunk::<4>()
        .ok_or("short queued record")?;
    if magic != QUEUED_MAGIC {
        return Err("bad magic".into());
    }
    let token = token
        .first_chunk::<8>()
        .map(|t| u64::from_be_bytes(*t))
        .ok_or("short queued record")?;
    let frame = Bytes::from(data).slice(QUEUED_HEADER_LEN..);
    match Decoder::new(ProtocolVersion::V5).decode_frame(&frame) {
        Ok(Packet::Publish(p)) if p.packet_id().is_some() => {
            let mut message = Message::with_topic(p.topic, p.payload).qos(p.qos_pid.qos());
            message.retain = p.retain;
            message.properties = p.properties;
            Ok(QueuedRecord {
                token: PublishToken(token),
                message,
                expires_at: None,
            })
        }
        Ok(_) => Err("queued record is not a QoS 1/2 PUBLISH".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writers of the old format, for migration tests.
#[cfg(test)]
pub(super) mod write {
    use bytes::{BufMut, BytesMut};
    use mqtt_proto::{Packet, ProtocolVersion, Publish, QoS, QosPid};

    use super::*;
    use crate::store::file::record::PLACEHOLDER_ID;

    pub(in crate::store::file) fn outgoing(dir: &Path, record: &OutgoingRecord) {
        let mut buf = BytesMut::new();
        buf.put_slice(MAGIC);
        buf.put_u64(record.seq);
        buf.put_u64(record.token.0);
        buf.put_u8(match record.state {
            OutgoingState::Published => 1,
            OutgoingState::Released => 2,
        });
        Packet::Publish(record.publish.clone())
            .encode(ProtocolVersion::V5, &mut buf)
            .unwrap();
        let id = record.packet_id().unwrap().get();
        fs::write(dir.join(format!("{OUTGOING}{id:05}")), buf).unwrap();
    }

    pub(in crate::store::file) fn incoming(dir: &Path, id: PacketId) {
        fs::write(dir.join(format!("{INCOMING}{:05}", id.get())), b"").unwrap();
    }

    pub(in crate::store::file) fn queued(dir: &Path, record: &QueuedRecord) {
        let message = &record.message;
        let qos_pid = match message.qos {
            QoS::AtLeastOnce => QosPid::AtLeastOnce(PLACEHOLDER_ID),
            _ => QosPid::ExactlyOnce(PLACEHOLDER_ID),
        };
        let mut publish = Publish::new(message.topic.clone(), qos_pid, message.payload.clone());
        publish.retain = message.retain;
        publish.properties = message.properties.clone();
        let mut buf = BytesMut::new();
        buf.put_slice(QUEUED_MAGIC);
        buf.put_u64(record.token.0);
        Packet::Publish(publish)
            .encode(ProtocolVersion::V5, &mut buf)
            .unwrap();
        fs::write(dir.join(format!("{QUEUED}{:020}", record.token.0)), buf).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_old_format() {
        let id = PacketId::new(7).unwrap();
        for (name, kind) in [
            ("out-00007", Some(Kind::Outgoing)),
            ("out-00000", None),
            ("out-70000", None),
            ("out-x", None),
            ("in-00007", Some(Kind::Incoming(id))),
            ("queue-00000000000000000003", Some(Kind::Queued)),
            ("queue-", None),
            ("out-00007.tmp", Some(Kind::Temporary)),
            ("queue-00000000000000000003.tmp", Some(Kind::Temporary)),
            ("notes.tmp", None),
            ("log", None),
            ("LOCK", None),
        ] {
            assert_eq!(kind_of(name), kind, "{name}");
        }
    }

    #[test]
    fn short_and_foreign_files_are_refused() {
        for data in [
            &b""[..],
            b"MQS1",
            b"MQS1garbage",
            b"XXXX\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01",
        ] {
            assert!(decode(Kind::Outgoing, data.to_vec()).is_err(), "{data:?}");
        }
        for data in [
            &b""[..],
            b"MQQ1\0\0",
            b"MQQ1\0\0\0\0\0\0\0\x03",
            b"MQS1\0\0\0\0\0\0\0\x03\x32",
        ] {
            assert!(decode(Kind::Queued, data.to_vec()).is_err(), "{data:?}");
        }
        assert_eq!(decode(Kind::Temporary, b"junk".to_vec()), Ok(None));
    }
}
