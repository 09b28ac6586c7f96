//! Interning of repeated strings (hosts, syslog identifiers) shared by the readers.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::file::Fnv1a64;

/// How many distinct hosts or identifiers the interner keeps before it starts over;
/// a bound for inputs with absurdly many distinct values.
const INTERN_CAPACITY: usize = 4096;

/// Shares repeated strings: a record's host and identifier are clones of one `Arc`.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    last: Option<Arc<str>>,
    map: HashMap<Box<[u8]>, Arc<str>, BuildHasherDefault<Fnv1a64>>,
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
                let a: Arc<str> = Arc::from(String::from_utf8_lossy(bytes));
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
}
