//! Expanding input paths and ordering rotated log sets oldest first.
//!
//! A rotated set is the files that share a base name in one directory:
//! `mail.log.3.gz`, `mail.log.2.gz`, `mail.log.1`, `mail.log` (numeric suffix,
//! highest = oldest) or `mail.log-20250301.gz`, `mail.log-20250314`, `mail.log` (date
//! suffix, ascending). [`order`] puts each set oldest first — dated files, then
//! numbered ones, then the live file — at the place where the set first appears in the
//! user's list; files that belong to no set keep the user's order. Compression is not
//! judged by the name here (the reader looks at magic bytes); `.gz` is only stripped
//! to find the base name.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::InputError;

/// Extensions of compressed files the reader cannot decompress; directory expansion
/// leaves them out rather than report every line as malformed. Named files are kept.
const UNREADABLE_EXTENSIONS: &[&str] = &["xz", "bz2", "zst", "lz4", "lzma", "zip", "Z"];

/// Where a file stands in its rotated set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Age {
    /// `base-YYYYMMDD[HH…]`: older first, by the digits.
    Dated(String),
    /// `base.N`: `Reverse` order, higher N is older.
    Numbered(std::cmp::Reverse<u64>),
    /// The live file `base`.
    Live,
}

/// Split a file name into its rotated-set base and age.
fn classify(name: &str) -> (&str, Age) {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    if let Some((base, n)) = name.rsplit_once('.')
        && !base.is_empty()
        && !n.is_empty()
        && n.len() <= 9
        && n.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = n.parse::<u64>()
    {
        return (base, Age::Numbered(std::cmp::Reverse(n)));
    }
    if let Some((base, date)) = name.rsplit_once('-')
        && !base.is_empty()
        && date.len() >= 8
        && date.bytes().all(|b| b.is_ascii_digit())
    {
        return (base, Age::Dated(date.to_owned()));
    }
    (name, Age::Live)
}

/// Expand directories to the regular files in them (sorted by name, hidden files and
/// [`UNREADABLE_EXTENSIONS`] left out, not recursive); other paths are kept as given.
/// A directory that cannot be listed is an error naming it.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        let io = |source| InputError::Io {
            path: path.clone(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let ext = Path::new(name).extension().and_then(|e| e.to_str());
            if ext.is_some_and(|e| UNREADABLE_EXTENSIONS.contains(&e)) {
                continue;
            }
            if entry.path().is_file() {
                files.push(entry.path());
            }
        }
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

/// Order `paths` so that each rotated set is read oldest first; see the
/// [module docs](self). Duplicates are dropped (first occurrence kept).
pub fn order(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    // (set key, age, path); set key = (parent dir, base name).
    let mut entries: Vec<((PathBuf, String), Age, PathBuf)> = Vec::new();
    for p in paths {
        if !seen.insert(p.clone()) {
            continue;
        }
        let name = p.file_name().and_then(|n| n.to_str());
        let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
        let (base, age) = match name {
            Some(n) => {
                let (b, a) = classify(n);
                (b.to_owned(), a)
            }
            // Non-UTF-8 names: a set of their own, never reordered.
            None => (p.to_string_lossy().into_owned(), Age::Live),
        };
        entries.push(((parent, base), age, p.clone()));
    }
    // Sets in order of first appearance, files sorted inside each.
    let mut set_order: Vec<&(PathBuf, String)> = Vec::new();
    for (key, _, _) in &entries {
        if !set_order.contains(&key) {
            set_order.push(key);
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    for key in set_order {
        let mut members: Vec<&(_, Age, PathBuf)> = entries.iter().filter(|e| &e.0 == key).collect();
        // Stable: equal ages (e.g. `x.1` and `x.1.gz`) keep the user's order.
        members.sort_by(|a, b| a.1.cmp(&b.1));
        out.extend(members.into_iter().map(|e| e.2.clone()));
    }
    out
}

/// [`expand`] then [`order`].
pub fn expand_and_order(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    Ok(order(&expand(paths)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn numbered_set_oldest_first() {
        let got = order(&pb(&[
            "/l/mail.log",
            "/l/mail.log.1",
            "/l/mail.log.2.gz",
            "/l/mail.log.10.gz",
            "/l/mail.log.3.gz",
        ]));
        assert_eq!(
            got,
            pb(&[
                "/l/mail.log.10.gz",
                "/l/mail.log.3.gz",
                "/l/mail.log.2.gz",
                "/l/mail.log.1",
                "/l/mail.log"
            ])
        );
    }

    #[test]
    fn dated_set_ascending_before_live() {
        let got = order(&pb(&[
            "maillog",
            "maillog-20250314.gz",
            "maillog-20250301",
            "maillog-20250307.gz",
        ]));
        assert_eq!(
            got,
            pb(&[
                "maillog-20250301",
                "maillog-20250307.gz",
                "maillog-20250314.gz",
                "maillog"
            ])
        );
    }

    #[test]
    fn unrelated_files_keep_user_order_and_sets_stay_in_place() {
        let got = order(&pb(&["b.log", "mail.log", "a.log", "mail.log.1", "b.log"]));
        assert_eq!(got, pb(&["b.log", "mail.log.1", "mail.log", "a.log"]));
        // Same base in different directories: different sets.
        let got = order(&pb(&["/x/mail.log", "/y/mail.log.1", "/x/mail.log.1"]));
        assert_eq!(got, pb(&["/x/mail.log.1", "/x/mail.log", "/y/mail.log.1"]));
    }

    #[test]
    fn classify_edge_cases() {
        assert_eq!(classify("mail.log"), ("mail.log", Age::Live));
        assert_eq!(
            classify("mail.log.1"),
            ("mail.log", Age::Numbered(std::cmp::Reverse(1)))
        );
        assert_eq!(
            classify("mail-20250314.gz"),
            ("mail", Age::Dated("20250314".into()))
        );
        assert_eq!(classify("mail-2025"), ("mail-2025", Age::Live));
        assert_eq!(classify(".1"), (".1", Age::Live));
    }

    #[test]
    fn expand_directory() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "mail.log",
            "mail.log.1",
            "mail.log.2.gz",
            ".hidden",
            "mail.log.3.xz",
        ] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let other = dir.path().join("explicit.xz");
        std::fs::write(&other, b"x").unwrap();
        let got = expand_and_order(&[dir.path().to_path_buf(), other.clone()]).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["mail.log.2.gz", "mail.log.1", "mail.log", "explicit.xz"]
        );
    }
}
