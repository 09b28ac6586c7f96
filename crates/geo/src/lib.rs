//! Country, autonomous system number and AS organisation of client addresses, from
//! MaxMind-format (`.mmdb`) databases the administrator provides: GeoLite2 / GeoIP2
//! Country or City and GeoLite2 ASN, or DB-IP's lite equivalents.
//!
//! [`Geo`] holds up to two databases (a country one and an ASN one), each named by a
//! path in the configuration and each optional:
//!
//! * **absent** (not configured, or no file at the path) → no enrichment from it, never
//!   an error (a file that appears later is picked up);
//! * **corrupt, unreadable or of the wrong kind** (an ASN database where a country one
//!   is expected) → one warning naming the file, no enrichment from it, loading goes on;
//! * **replaced on disk** (a new monthly download) → picked up without a restart: the
//!   file's modification time, inode and size are checked at most every
//!   [`RELOAD_CHECK_INTERVAL`] (or [`Geo::with_check_interval`]) by [`Geo::refresh`], and a changed file is read again.
//!   A replacement that cannot be read leaves the previous database in use (one warning
//!   per replacement), so a half-copied file never turns enrichment off.
//!
//! A database is read into memory whole (no memory map: a file replaced or truncated
//! under a map could crash the process). Lookups are pure memory reads.
//!
//! This crate is **not** a downloader (fetching and updating the databases is the
//! administrator's, e.g. `geoipupdate`), and it knows nothing of log lines or
//! PostgreSQL: the loader asks it about an address when it stores a failure, so that the
//! stored answer is the database's at that time and later updates never rewrite history.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use maxminddb::Reader;
use serde::Serialize;

/// How often, at most, [`Geo::refresh`] looks at the database files for a replacement.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// Largest database file read, in bytes. GeoLite2-City, the largest of the kinds
/// accepted, is about 70 MiB; this only stops a wrong path (a disk image) from being
/// read into memory.
pub const MAX_DATABASE_SIZE: u64 = 512 * 1024 * 1024;

/// Longest AS organisation name kept, in bytes.
pub const MAX_AS_ORG_LEN: usize = 200;

/// What a database says about one address. Every field is `None` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2 code of the country (`DE`), else of the registered country.
    pub country: Option<String>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// Autonomous system organisation.
    pub as_org: Option<String>,
}

impl GeoInfo {
    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.country.is_none() && self.asn.is_none() && self.as_org.is_none()
    }
}

/// Why a database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read.
    #[error("cannot read the GeoIP database {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_DATABASE_SIZE`].
    #[error("the GeoIP database {path} is {size} bytes, more than the {max} bytes accepted")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The file is not a MaxMind DB.
    #[error("{path} is not a valid MaxMind database (.mmdb): {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The reader's complaint.
        reason: String,
    },
    /// The file is a MaxMind DB of another kind.
    #[error(
        "{path} is a {found} database, not a {expected} one (expected a database type containing {accepted})"
    )]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// Its `database_type`.
        found: String,
        /// What the setting wants.
        expected: &'static str,
        /// The accepted type names.
        accepted: String,
    },
}

/// Which kind of database a setting names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Country or City: answers the country.
    Country,
    /// ASN: answers the AS number and organisation.
    Asn,
}

impl DatabaseKind {
    /// Words one of which the database's `database_type` must contain
    /// (`GeoLite2-Country`, `GeoIP2-City`, `DBIP-Country-Lite`, `GeoLite2-ASN`,
    /// `DBIP-ASN-Lite`).
    fn accepted(self) -> &'static [&'static str] {
        match self {
            DatabaseKind::Country => &["Country", "City"],
            DatabaseKind::Asn => &["ASN"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            DatabaseKind::Country => "country",
            DatabaseKind::Asn => "ASN",
        }
    }
}

/// What identifies a file's content on disk without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    inode: u64,
    len: u64,
}

fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(FileStamp {
        modified: meta.modified().ok(),
        inode,
        len: meta.len(),
    })
}

/// Read and check one database.
pub fn open_database(path: &Path, kind: DatabaseKind) -> Result<Reader<Vec<u8>>, GeoError> {
    let read = |source| GeoError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_DATABASE_SIZE {
        return Err(GeoError::TooLarge {
            path: path.to_owned(),
            size: len,
            max: MAX_DATABASE_SIZE,
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let reader = Reader::from_source(bytes).map_err(|e| GeoError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let found = &reader.metadata.database_type;
    let lower = found.to_ascii_lowercase();
    if !kind
        .accepted()
        .iter()
        .any(|w| lower.contains(&w.to_ascii_lowercase()))
    {
        return Err(GeoError::WrongKind {
            path: path.to_owned(),
            found: found.clone(),
            expected: kind.name(),
            accepted: kind.accepted().join(" or "),
        });
    }
    // A database whose tree is damaged opens fine; one lookup finds most of that out
    // now rather than on the first failure.
    let probe: IpAddr = if reader.metadata.ip_version == 6 {
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    };
    if let Err(e) = reader.lookup::<maxminddb::geoip2::Asn<'_>>(probe) {
        return Err(GeoError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        });
    }
    Ok(reader)
}

/// One configured database file and what was loaded from it.
#[derive(Debug)]
struct Slot {
    path: PathBuf,
    kind: DatabaseKind,
    reader: Option<Reader<Vec<u8>>>,
    /// The stamp of the file last read (or found unusable): a new stamp means a new file.
    seen: Option<FileStamp>,
    last_check: Option<Instant>,
}

impl Slot {
    fn new(path: PathBuf, kind: DatabaseKind) -> Slot {
        let mut slot = Slot {
            path,
            kind,
            reader: None,
            seen: None,
            last_check: None,
        };
        slot.check(Instant::now(), true);
        slot
    }

    /// Read the file again when it changed. `starting`: the first look, which also
    /// says when no file is there.
    fn check(&mut self, now: Instant, starting: bool) {
        self.last_check = Some(now);
        let current = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if starting {
                    tracing::info!(
                        path = %self.path.display(),
                        "No GeoIP {} database at this path: failures are stored without {}; \
                         it is read once it appears.",
                        self.kind.name(),
                        match self.kind {
                            DatabaseKind::Country => "country",
                            DatabaseKind::Asn => "AS number and organisation",
                        }
                    );
                }
                // A database removed from disk stays in use: it was valid.
                self.seen = None;
                return;
            }
            Err(e) => {
                if starting || self.seen.is_some() {
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "Cannot look at the GeoIP database; going on without reading it.");
                }
                self.seen = None;
                return;
            }
        };
        if self.seen == Some(current) {
            return;
        }
        self.seen = Some(current);
        match open_database(&self.path, self.kind) {
            Ok(reader) => {
                tracing::info!(
                    path = %self.path.display(),
                    database_type = %reader.metadata.database_type,
                    build_epoch = reader.metadata.build_epoch,
                    "GeoIP {} database loaded.",
                    self.kind.name()
                );
                self.reader = Some(reader);
            }
            Err(e) => {
                let keeps = if self.reader.is_some() {
                    "the previous database stays in use"
                } else {
                    "failures are stored without it"
                };
                tracing::warn!("{e}; {keeps}. Replace the file with a valid one.");
            }
        }
    }
}

/// The configured databases. Cheap to query; [`Geo::refresh`] picks up replacements.
#[derive(Debug)]
pub struct Geo {
    country: Option<Slot>,
    asn: Option<Slot>,
    check_interval: Duration,
}

impl Default for Geo {
    fn default() -> Self {
        Geo {
            country: None,
            asn: None,
            check_interval: RELOAD_CHECK_INTERVAL,
        }
    }
}

impl Geo {
    /// No databases: every lookup is empty.
    pub fn none() -> Geo {
        Geo::default()
    }

    /// Open the configured databases (either may be `None`). Never fails: problems are
    /// logged (a warning naming the file) and that database is left out.
    pub fn open(country: Option<&Path>, asn: Option<&Path>) -> Geo {
        Geo {
            country: country.map(|p| Slot::new(p.to_owned(), DatabaseKind::Country)),
            asn: asn.map(|p| Slot::new(p.to_owned(), DatabaseKind::Asn)),
            check_interval: RELOAD_CHECK_INTERVAL,
        }
    }

    /// Look at the files at most every `interval` instead of
    /// [`RELOAD_CHECK_INTERVAL`].
    pub fn with_check_interval(mut self, interval: Duration) -> Geo {
        self.check_interval = interval;
        self
    }

    /// Whether any database is configured (loaded or not).
    pub fn is_configured(&self) -> bool {
        self.country.is_some() || self.asn.is_some()
    }

    /// Whether a database is loaded for each kind: (country, ASN).
    pub fn loaded(&self) -> (bool, bool) {
        let loaded = |s: &Option<Slot>| s.as_ref().is_some_and(|s| s.reader.is_some());
        (loaded(&self.country), loaded(&self.asn))
    }

    /// Look at the files for a replacement, unless that was done less than the check
    /// interval ([`RELOAD_CHECK_INTERVAL`] unless set) ago.
    pub fn refresh(&mut self) {
        self.refresh_at(Instant::now(), self.check_interval);
    }

    /// [`Geo::refresh`] at `now`, checking files not looked at for `interval`.
    pub fn refresh_at(&mut self, now: Instant, interval: Duration) {
        for slot in [&mut self.country, &mut self.asn].into_iter().flatten() {
            let due = slot
                .last_check
                .is_none_or(|t| now.saturating_duration_since(t) >= interval);
            if due {
                slot.check(now, false);
            }
        }
    }

    /// What the databases say about `addr` (as logged: IPv4, IPv6, an `IPv6:` prefix
    /// is accepted). Empty for anything that is not an address or not in them.
    pub fn lookup(&self, addr: &str) -> GeoInfo {
        let mut info = GeoInfo::default();
        if self.country.is_none() && self.asn.is_none() {
            return info;
        }
        let text = addr.strip_prefix("IPv6:").unwrap_or(addr);
        let Ok(ip) = text.parse::<IpAddr>() else {
            return info;
        };
        if let Some(reader) = self.country.as_ref().and_then(|s| s.reader.as_ref())
            && let Ok(Some(c)) = reader.lookup::<maxminddb::geoip2::Country<'_>>(ip)
        {
            info.country = c
                .country
                .and_then(|c| c.iso_code)
                .or_else(|| c.registered_country.and_then(|c| c.iso_code))
                .filter(|code| code.len() <= 3 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
                .map(str::to_owned);
        }
        if let Some(reader) = self.asn.as_ref().and_then(|s| s.reader.as_ref())
            && let Ok(Some(a)) = reader.lookup::<maxminddb::geoip2::Asn<'_>>(ip)
        {
            info.asn = a.autonomous_system_number;
            info.as_org = a.autonomous_system_organization.map(|o| {
                let mut end = o.len().min(MAX_AS_ORG_LEN);
                while !o.is_char_boundary(end) {
                    end -= 1;
                }
                o[..end].to_owned()
            });
        }
        info
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/geoip")
            .join(name)
    }

    #[test]
    fn looks_up_country_and_asn() {
        let geo = Geo::open(
            Some(&fixture("GeoLite2-Country-Test.mmdb")),
            Some(&fixture("GeoLite2-ASN-Test.mmdb")),
        );
        assert_eq!(geo.loaded(), (true, true));
        // From test-data/source-data: 2.125.160.216 is GB; 1.128.0.0/11 is AS1221 Telstra.
        assert_eq!(geo.lookup("2.125.160.216").country.as_deref(), Some("GB"));
        let a = geo.lookup("1.128.0.1");
        assert_eq!(a.asn, Some(1221));
        assert_eq!(a.as_org.as_deref(), Some("Telstra Pty Ltd"));
        assert!(geo.lookup("not an address").is_empty());
        assert!(geo.lookup("10.0.0.1").is_empty());
    }

    #[test]
    fn absent_corrupt_and_wrong_kind_leave_it_out() {
        let dir = tempfile::tempdir().unwrap();
        let geo = Geo::open(Some(&dir.path().join("missing.mmdb")), None);
        assert!(geo.is_configured());
        assert_eq!(geo.loaded(), (false, false));
        assert!(geo.lookup("2.125.160.216").is_empty());

        // Cut short: no metadata section, so not a MaxMind DB.
        let truncated = dir.path().join("truncated.mmdb");
        let bytes = std::fs::read(fixture("GeoLite2-ASN-Test.mmdb")).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let e = open_database(&truncated, DatabaseKind::Asn).unwrap_err();
        assert!(matches!(e, GeoError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("truncated.mmdb"), "{e}");
        // Random bytes, an empty file, a directory.
        std::fs::write(&truncated, b"\x00\xffgarbage").unwrap();
        assert!(open_database(&truncated, DatabaseKind::Asn).is_err());
        std::fs::write(&truncated, b"").unwrap();
        assert!(open_database(&truncated, DatabaseKind::Asn).is_err());
        assert!(matches!(
            open_database(dir.path(), DatabaseKind::Asn),
            Err(GeoError::Read { .. } | GeoError::Corrupt { .. })
        ));
        // A damaged search tree (MaxMind's own broken test database) may open; its
        // lookups then answer nothing instead of failing.
        let geo = Geo::open(None, Some(&fixture("broken.mmdb")));
        for a in [
            "1.1.1.1",
            "1.1.1.3",
            "1.1.1.32",
            "255.255.255.255",
            "::1",
            "2001:db8::1",
        ] {
            let _ = geo.lookup(a);
        }
        let wrong = open_database(&fixture("GeoLite2-ASN-Test.mmdb"), DatabaseKind::Country);
        let message = wrong.unwrap_err().to_string();
        assert!(message.contains("GeoLite2-ASN"), "{message}");
        assert!(message.contains("GeoLite2-ASN-Test.mmdb"), "{message}");
        let geo = Geo::open(Some(&fixture("GeoLite2-ASN-Test.mmdb")), Some(&truncated));
        assert_eq!(geo.loaded(), (false, false));
        assert!(geo.lookup("1.128.0.1").is_empty());
    }

    #[test]
    fn a_replaced_file_is_picked_up_and_a_broken_replacement_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asn.mmdb");
        let mut geo = Geo::open(None, Some(&path));
        assert!(geo.lookup("1.128.0.1").asn.is_none());
        let t0 = Instant::now();
        std::fs::copy(fixture("GeoLite2-ASN-Test.mmdb"), &path).unwrap();
        // Not yet due: nothing read.
        geo.refresh_at(t0, Duration::from_secs(3600));
        assert!(geo.lookup("1.128.0.1").asn.is_none());
        geo.refresh_at(t0 + Duration::from_secs(3600), Duration::from_secs(3600));
        assert_eq!(geo.lookup("1.128.0.1").asn, Some(1221));
        // A broken replacement (new inode): the old one stays.
        let tmp = dir.path().join("asn.tmp");
        let bytes = std::fs::read(fixture("GeoLite2-ASN-Test.mmdb")).unwrap();
        std::fs::write(&tmp, &bytes[..bytes.len() / 3]).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        geo.refresh_at(t0 + Duration::from_secs(7200), Duration::from_secs(3600));
        assert_eq!(geo.lookup("1.128.0.1").asn, Some(1221));
        // A valid replacement of another kind of data is read.
        std::fs::copy(fixture("GeoLite2-Country-Test.mmdb"), &tmp).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        geo.refresh_at(t0 + Duration::from_secs(10_800), Duration::from_secs(3600));
        // (a country database where an ASN one belongs: refused, the old one stays)
        assert_eq!(geo.lookup("1.128.0.1").asn, Some(1221));
        std::fs::copy(fixture("GeoLite2-ASN-Test.mmdb"), &tmp).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        geo.refresh_at(t0 + Duration::from_secs(14_400), Duration::from_secs(3600));
        assert_eq!(geo.lookup("12.81.92.1").asn, Some(7018));
    }
}
