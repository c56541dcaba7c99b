//! Hash maps for keys the client picks itself: sequential ids, its own
//! random nonces, its own ports.
//!
//! The standard SipHash resists keys chosen to collide, which none of these
//! are; it costs more than anything else in the engine's share of a round
//! trip. [`KeyHasher`] is a multiplicative hash instead. Lookups with keys
//! from the network (a response's nonce) are fine: only inserting chosen
//! keys could degrade a table, and every key inserted here is ours.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` hashed with [`KeyHasher`] (internal to the crate: the
/// engine's and the client's own tables).
pub type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Multiplicative hashing (as in rustc's FxHash): each word is mixed in
/// with one multiplication by an odd constant. That is a bijection on the
/// low bits, which hashbrown picks the bucket with, so sequential ids never
/// share a bucket; the top bits, which it tags entries with, depend on
/// every input bit. Not for keys an attacker chooses.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(K);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(v: T) -> u64 {
        BuildHasherDefault::<KeyHasher>::default().hash_one(v)
    }

    #[test]
    fn sequential_ids_spread_over_low_and_high_bits() {
        let low: HashSet<u64> = (0..4096u64).map(|i| hash(i) & 0xfff).collect();
        let high: HashSet<u64> = (0..4096u64).map(|i| hash(i) >> 57).collect();
        // A perfect spread fills all 4096 low buckets and all 128 tags.
        assert_eq!(low.len(), 4096);
        assert_eq!(high.len(), 128);
    }

    #[test]
    fn every_byte_of_a_nonce_counts() {
        let base = [7u8; 12];
        let h = hash(base);
        for i in 0..12 {
            let mut n = base;
            n[i] ^= 1;
            assert_ne!(hash(n), h, "byte {i} ignored");
        }
    }
}
