//! Interning of repeated strings (hosts, syslog identifiers) shared by the readers.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// How many distinct hosts or identifiers the interner keeps before it starts over;
/// a bound for inputs with absurdly many distinct values.
const INTERN_CAPACITY: usize = 4096;

/// Shares repeated strings: a record's host and identifier are clones of one `Arc`.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    last: Option<Arc<str>>,
    map: HashMap<Box<[u8]>, Arc<str>, BuildHasherDefault<WordHasher>>,
}

/// Multiplier of the word hash (the 64-bit constant of rustc's FxHasher v2).
const WORD_K: u64 = 0xf135_7aea_2e62_a9c5;

/// A hasher that takes eight bytes per step, for the interner's short keys (a host
/// name, a syslog identifier). Not stable across versions and not DoS-resistant; a
/// reader sees its own hosts' names, and nothing here is stored. Byte-wise FNV cost
/// more than the rest of the lookup together when consecutive lines come from
/// different hosts (merged or collected logs).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WordHasher(u64);

impl WordHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(WORD_K).rotate_left(26);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high half into the low bits, which pick the bucket.
        let h = self.0.wrapping_mul(WORD_K);
        h ^ (h >> 32)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut w = [0u8; 8];
            w[..tail.len()].copy_from_slice(tail);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

impl Interner {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&mut self, bytes: &[u8]) -> Arc<str> {
        if let Some(last) = &self.last
            && last.as_bytes() == bytes
        {
            return Arc::clone(last);
        }
        let arc = match self.map.get(bytes) {
            Some(a) => Arc::clone(a),
            None => {
                // NUL becomes U+FFFD like invalid UTF-8: PostgreSQL's text cannot hold
                // it, and a damaged host name must not stop a load.
                let text = String::from_utf8_lossy(bytes);
                let a: Arc<str> = if text.contains('\0') {
                    Arc::from(text.replace('\0', "\u{fffd}"))
                } else {
                    Arc::from(text)
                };
                if self.map.len() >= INTERN_CAPACITY {
                    self.map.clear();
                }
                self.map.insert(bytes.into(), Arc::clone(&a));
                a
            }
        };
        self.last = Some(Arc::clone(&arc));
        arc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_stays_bounded() {
        let mut i = Interner::default();
        let a = i.get(b"mx1");
        let b = i.get(b"mx1");
        assert!(Arc::ptr_eq(&a, &b));
        for n in 0..(INTERN_CAPACITY * 2) {
            i.get(format!("host{n}").as_bytes());
        }
        assert!(i.len() <= INTERN_CAPACITY);
        assert_eq!(&*i.get(b"\xffx"), "\u{fffd}x");
    }

    #[test]
    fn keys_that_differ_in_the_padding_stay_apart() {
        let mut i = Interner::default();
        for k in [
            &b"a"[..],
            b"a\0",
            b"",
            b"\0",
            b"postfix/smtpd",
            b"postfix/smtpd\0",
        ] {
            assert_eq!(
                i.get(k).as_bytes(),
                String::from_utf8_lossy(k)
                    .replace('\0', "\u{fffd}")
                    .as_bytes()
            );
        }
        assert_eq!(&*i.get(b"a"), "a");
        assert_eq!(&*i.get(b"a\0"), "a\u{fffd}");
        assert_eq!(&*i.get(b"postfix/smtpd"), "postfix/smtpd");
    }
}
