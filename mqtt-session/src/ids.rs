//! The packet identifier allocator: an identifier is never handed out twice while in use
//! [MQTT-2.3.1-2 v3.1.1], and is freed only when its flow completes [MQTT-2.3.1-3 v3.1.1].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use mqtt_proto::PacketId;

/// A hash map keyed by identifiers this side hands out (packet identifiers of outgoing flows,
/// publish tokens), hashed with [`IdHasher`].
///
/// Only for keys the peer does not choose: the hash has no secret, so a peer picking keys
/// could make them collide (identifiers the server picks stay in a `HashMap` with the
/// standard, keyed hasher).
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A multiply-and-rotate hash of integer keys: a few instructions where SipHash spends a
/// hundred on every insert and lookup of a flow.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    /// An odd constant with well-spread bits (2^64 divided by the golden ratio).
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn add(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(Self::K);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The product's high bits depend on every bit of the key; hashbrown takes the bucket
        // from the low bits, so bring the high ones down.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
}

/// Number of 64-bit words needed for one bit per identifier 0..=65535.
const WORDS: usize = 65_536 / 64;

/// Tracks which packet identifiers are in use, in a bitmap of at most 8 KiB that grows up to
/// the highest identifier handed out: a connection that only subscribes holds a few bytes,
/// not 8 KiB (what many idle connections in one process would notice).
///
/// Hand-written because the job is tiny and fixed-size; a general bitset crate would add a
/// dependency for forty lines.
#[derive(Clone)]
pub(crate) struct PacketIds {
    used: Vec<u64>,
    in_use: usize,
    next: u16,
}

impl PacketIds {
    pub(crate) fn new() -> Self {
        Self {
            used: Vec::new(),
            in_use: 0,
            next: 1,
        }
    }

    fn slot(id: u16) -> (usize, u64) {
        (usize::from(id / 64), 1u64 << (id % 64))
    }

    /// Marks `id` as in use (when restoring a stored session). Returns false if it already was.
    pub(crate) fn claim(&mut self, id: PacketId) -> bool {
        let (word, bit) = Self::slot(id.get());
        if word >= self.used.len() {
            self.used.resize((word + 1).min(WORDS), 0);
        }
        match self.used.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                self.in_use += 1;
                true
            }
            _ => false,
        }
    }

    /// Hands out the next free identifier after the last one given, or `None` if all 65,535
    /// are in use.
    pub(crate) fn allocate(&mut self) -> Option<PacketId> {
        if self.in_use >= usize::from(u16::MAX) {
            return None;
        }
        let mut candidate = PacketId::new(self.next).unwrap_or(PacketId::new(1)?);
        loop {
            if self.claim(candidate) {
                self.next = candidate.next().get();
                return Some(candidate);
            }
            candidate = candidate.next();
        }
    }

    /// Frees `id`.
    pub(crate) fn release(&mut self, id: PacketId) {
        let (word, bit) = Self::slot(id.get());
        if let Some(w) = self.used.get_mut(word) {
            if *w & bit != 0 {
                *w &= !bit;
                self.in_use -= 1;
            }
        }
    }

    /// Number of identifiers in use.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// Frees the bitmap when no identifier is in use; it grows again with the next ones.
    pub(crate) fn release_memory(&mut self) {
        if self.in_use == 0 {
            self.used = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_an_identifier_in_use() {
        // [MQTT-2.3.1-2 v3.1.1] [MQTT-2.2.1-3 v5.0]
        let mut ids = PacketIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..u16::MAX {
            let id = ids.allocate().unwrap();
            assert_ne!(id.get(), 0);
            assert!(seen.insert(id));
        }
        assert_eq!(ids.allocate(), None, "all 65535 identifiers are in use");
        let freed = PacketId::new(777).unwrap();
        ids.release(freed);
        assert_eq!(ids.allocate(), Some(freed));
    }

    #[test]
    fn the_bitmap_grows_only_to_the_highest_identifier_used() {
        let mut ids = PacketIds::new();
        for _ in 0..10 {
            let id = ids.allocate().unwrap();
            ids.release(id);
        }
        assert_eq!(ids.used.len(), 1, "ten identifiers fit in one word");
        assert!(ids.claim(PacketId::new(u16::MAX).unwrap()));
        assert_eq!(ids.used.len(), WORDS);
    }

    #[test]
    fn identifiers_advance_rather_than_reuse_the_last_freed() {
        let mut ids = PacketIds::new();
        let a = ids.allocate().unwrap();
        ids.release(a);
        let b = ids.allocate().unwrap();
        assert_ne!(a, b, "a just-freed id is not reused at once");
    }
}
