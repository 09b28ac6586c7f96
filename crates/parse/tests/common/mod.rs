//! Helpers shared by the corpus tests: where the corpora are and a minimal syslog
//! prefix splitter (the real one lives in `pftrack-input`).

#![allow(dead_code)]

use std::path::PathBuf;

/// The shared corpora directory, read in place.
pub fn corpora() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: corpora directory {} is missing", dir.display());
        None
    }
}

/// One syslog line split into identifier, daemon and message.
pub struct Split<'a> {
    /// The syslog identifier (`postfix/submission/smtpd`).
    pub identifier: &'a [u8],
    /// The message after `ident[pid]: `.
    pub message: &'a [u8],
}

impl Split<'_> {
    /// The last `/` component of the identifier.
    pub fn daemon(&self) -> String {
        let id = String::from_utf8_lossy(self.identifier);
        id.rsplit('/').next().unwrap_or(&id).to_string()
    }
}

/// Find `ident[pid]:` (or `ident[pid]` without the colon, as some damaged logs have)
/// after the timestamp and host, whatever the timestamp style: the first
/// space-separated token that looks like `name[digits]` followed by `:` or a space.
pub fn split_line(line: &[u8]) -> Option<Split<'_>> {
    let mut start = 0;
    while start < line.len() {
        let end = line[start..]
            .iter()
            .position(|&b| b == b' ')
            .map_or(line.len(), |p| start + p);
        let tok = &line[start..end];
        if let Some(open) = tok.iter().position(|&b| b == b'[')
            && open > 0
        {
            let after = &tok[open + 1..];
            let close = after.iter().position(|&b| b == b']');
            if let Some(close) = close
                && close > 0
                && after[..close].iter().all(u8::is_ascii_digit)
            {
                let tail = &after[close + 1..];
                if tail.is_empty() || tail == b":" {
                    let msg_start = (end + 1).min(line.len());
                    return Some(Split {
                        identifier: &tok[..open],
                        message: &line[msg_start..],
                    });
                }
            }
        }
        start = end + 1;
    }
    None
}

/// Lines of a file as byte slices, without the trailing `\n` (and `\r`).
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}
