//! The YAML configuration file (`config/pftrack.example.yaml`), validated once.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pftrack/pftrack.yaml";

/// The whole file. Unknown keys are errors, so a typo never goes unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to store.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// What to read from the journal.
    #[serde(default)]
    pub journal: JournalConfig,
    /// How rows are grouped into transactions.
    #[serde(default)]
    pub batch: BatchConfig,
    /// How long to keep rows (`90d`); kept forever when absent.
    pub retention: Option<String>,
    /// `error`, `warn`, `info`, `debug` or `trace` (overridden by `RUST_LOG`).
    pub log_level: Option<String>,
    /// Zone of syslog stamps without an offset: `local`, `UTC`, `+01:00` or an IANA name.
    pub timezone: Option<String>,
    /// The failure classifier.
    #[serde(default)]
    pub classify: ClassifyConfig,
    /// Message tags (per-client attribution).
    #[serde(default)]
    pub tags: TagsConfig,
    // BEGIN events (issue 12)
    /// Which facts become events in the outbox.
    #[serde(default)]
    pub events: EventsConfig,
    // END events
    // BEGIN metrics (issue 15)
    /// Prometheus `/metrics` of `pftrack run`; off when absent.
    pub metrics: Option<MetricsConfig>,
    // END metrics
    // BEGIN sasl (issue 14)
    /// GeoIP databases for the client addresses of SASL failures.
    #[serde(default)]
    pub geoip: GeoipConfig,
    /// SASL authentication failures: the brute-force rule.
    #[serde(default)]
    pub auth: AuthConfig,
    // END sasl
    // BEGIN fleet (issue 16)
    /// Several hosts in one database: how hosts are known to each other.
    #[serde(default)]
    pub fleet: FleetConfig,
    // END fleet
    // BEGIN web (issue 13)
    /// `pftrack serve`: the web UI and API.
    #[serde(default)]
    pub web: WebConfig,
    // END web
}

// BEGIN fleet (issue 16)
/// `fleet:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Other names and addresses of a host, by its syslog host name, for relays that
    /// name it in a way its logs do not show (`store1: [lmtp.example.internal,
    /// 10.0.0.5]`). Written into the `host_alias` table at every start.
    #[serde(default)]
    pub host_aliases: std::collections::BTreeMap<String, Vec<String>>,
}
// END fleet

// BEGIN web (issue 13)
/// `web:` section.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// `127.0.0.1:8025` (default), `[::]:8025`, or `unix:/run/pftrack/web.sock`.
    pub listen: Option<String>,
    /// The login role `pftrack serve` connects as (a member of `pftrack_web_read`);
    /// default: `database.url`. `--database-url` overrides both.
    pub database_url: Option<String>,
    /// Cookies are `Secure` even without a trusted proxy's `X-Forwarded-Proto: https`.
    #[serde(default)]
    pub secure_cookies: bool,
    /// Addresses or ranges of reverse proxies whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed (`127.0.0.1`, `10.0.0.0/8`).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Whether peers on the Unix socket are trusted proxies (default false: their
    /// `X-Forwarded-*` headers are ignored unless this says so).
    pub trust_unix_socket: Option<bool>,
    /// How long a login lasts (`12h`).
    pub session_ttl: Option<String>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &self.database_url.as_deref().map(pftrack_store::redact_url),
            )
            .field("secure_cookies", &self.secure_cookies)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("trust_unix_socket", &self.trust_unix_socket)
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// The web layer's settings, validated.
    pub fn settings(&self) -> anyhow::Result<pftrack_web::Settings> {
        let mut s = pftrack_web::Settings {
            secure_cookies: self.secure_cookies,
            ..pftrack_web::Settings::default()
        };
        for p in &self.trusted_proxies {
            s.trusted_proxies.push(
                p.parse()
                    .map_err(|e: String| anyhow::anyhow!("web.trusted_proxies: {e}"))?,
            );
        }
        if let Some(t) = self.trust_unix_socket {
            s.trust_unix_socket = t;
        }
        if let Some(ttl) = &self.session_ttl {
            let d =
                crate::duration::parse(ttl).with_context(|| format!("web.session_ttl: {ttl:?}"))?;
            if d < chrono::TimeDelta::minutes(1) || d > chrono::TimeDelta::days(30) {
                bail!("web.session_ttl: {ttl:?} is not between 1m and 30d");
            }
            s.session_ttl = d.to_std()?;
        }
        Ok(s)
    }
}
// END web

// BEGIN metrics (issue 15)
/// `metrics:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address `pftrack run` serves `/metrics` on (`127.0.0.1:9154`).
    pub listen: std::net::SocketAddr,
    /// How often the database gauges are refreshed (`60s`; `0s` turns them off).
    #[serde(default = "default_database_interval")]
    pub database_interval: String,
}

fn default_database_interval() -> String {
    "60s".to_owned()
}
// END metrics

// BEGIN events (issue 12)
/// `events:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Whether loads write events into the outbox (off by default).
    #[serde(default)]
    pub enabled: bool,
    /// Facts before this instant (RFC 3339) do not become events. Default: when a
    /// loader first ran with events enabled (recorded in the database), so that a
    /// backfill of history does not fire; an early time replays history on purpose.
    pub since: Option<String>,
    /// `recipient.failed` options.
    #[serde(default)]
    pub recipient_failed: RecipientFailedConfig,
    /// `recipient.deferred_long` options.
    #[serde(default)]
    pub deferred_long: DeferredLongConfig,
    /// How often `pftrack run` sweeps for lasting deferrals (`5m`).
    pub sweep_interval: Option<String>,
    /// Where events are delivered (webhook, exec, notify), each with its filter.
    #[serde(default)]
    pub sinks: Vec<pftrack_dispatch::SinkConfig>,
    /// How the dispatcher runs.
    #[serde(default)]
    pub dispatch: pftrack_dispatch::DispatchConfig,
}

/// `events: recipient_failed:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientFailedConfig {
    /// Reasons (docs/classification.md) for which a hard failure fires the event.
    #[serde(default = "default_failed_reasons")]
    pub reasons: Vec<String>,
    /// A soft mailbox-full deferral held this long fires the event too (`3d`; `off`),
    /// when `mailboxfull` is among the reasons.
    pub mailboxfull_held: Option<String>,
}

impl Default for RecipientFailedConfig {
    fn default() -> Self {
        RecipientFailedConfig {
            reasons: default_failed_reasons(),
            mailboxfull_held: None,
        }
    }
}

/// `events: deferred_long:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferredLongConfig {
    /// A recipient still deferred this long after its message arrived fires
    /// `recipient.deferred_long` (`1d`; `off`).
    pub after: Option<String>,
}

/// Default of `events.sweep_interval`.
pub const DEFAULT_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// `off`, or a duration; `None` when not given.
fn optional_age(
    key: &str,
    value: Option<&str>,
) -> anyhow::Result<Option<Option<chrono::TimeDelta>>> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().eq_ignore_ascii_case("off") => Ok(Some(None)),
        Some(v) => {
            let d = crate::duration::parse(v).with_context(|| format!("{key}: {v:?}"))?;
            if d <= chrono::TimeDelta::zero() {
                bail!("{key}: {v:?} must be more than 0 (or off)");
            }
            Ok(Some(Some(d)))
        }
    }
}

fn default_failed_reasons() -> Vec<String> {
    pftrack_events::DEFAULT_RECIPIENT_FAILED_REASONS
        .iter()
        .map(|r| (*r).to_owned())
        .collect()
}

impl EventsConfig {
    /// What the sweep looks for, facts from `since` on.
    pub fn sweep_rules(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> anyhow::Result<pftrack_events::lasting::SweepRules> {
        let deferred_long = optional_age(
            "events.deferred_long.after",
            self.deferred_long.after.as_deref(),
        )?
        .unwrap_or(Some(pftrack_events::lasting::DEFAULT_DEFERRED_LONG_AFTER));
        let held = optional_age(
            "events.recipient_failed.mailboxfull_held",
            self.recipient_failed.mailboxfull_held.as_deref(),
        )?
        .unwrap_or(Some(pftrack_events::lasting::DEFAULT_MAILBOX_FULL_HELD));
        let mailbox_full = self
            .recipient_failed
            .reasons
            .iter()
            .any(|r| r == "mailboxfull");
        Ok(pftrack_events::lasting::SweepRules {
            since,
            deferred_long_after: deferred_long,
            mailbox_full_held: held.filter(|_| mailbox_full),
        })
    }

    /// `sweep_interval` as a duration.
    pub fn sweep_interval(&self) -> anyhow::Result<std::time::Duration> {
        match &self.sweep_interval {
            None => Ok(DEFAULT_SWEEP_INTERVAL),
            Some(v) => {
                let d = crate::duration::parse(v)
                    .with_context(|| format!("events.sweep_interval: {v:?}"))?;
                match d.to_std() {
                    Ok(d) if !d.is_zero() => Ok(d),
                    _ => bail!("events.sweep_interval: {v:?} must be more than 0"),
                }
            }
        }
    }

    /// The sinks, validated (secrets read from their files or variables).
    pub fn sinks(&self) -> anyhow::Result<Vec<pftrack_dispatch::Sink>> {
        Ok(pftrack_dispatch::validate_sinks(&self.sinks)?)
    }

    /// The sink named `name`, validated.
    pub fn sink(&self, name: &str) -> anyhow::Result<pftrack_dispatch::Sink> {
        match self.sinks.iter().find(|s| s.name == name) {
            Some(s) => Ok(s.validate()?),
            None => {
                let names: Vec<&str> = self.sinks.iter().map(|s| s.name.as_str()).collect();
                bail!(
                    "no sink {name:?} in events.sinks of the configuration (configured: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            }
        }
    }

    /// `since` as a time.
    pub fn since(&self) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
        self.since
            .as_deref()
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.to_utc())
                    .with_context(|| format!("events.since: {s:?} is not an RFC 3339 time"))
            })
            .transpose()
    }

    /// The rules when events are enabled, `since` defaulting to `enabled_at`.
    pub fn rules(
        &self,
        enabled_at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<pftrack_events::EventRules> {
        Ok(pftrack_events::EventRules {
            since: Some(self.since()?.unwrap_or(enabled_at)),
            recipient_failed_reasons: self.recipient_failed.reasons.clone(),
            message_expired: true,
            message_bounced_back: true,
        })
    }
}
// END events

// BEGIN sasl (issue 14)
/// `geoip:` section: MaxMind-format databases (GeoLite2, DB-IP lite). Each is
/// optional; an absent file means no enrichment, never an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoipConfig {
    /// A Country or City database (`GeoLite2-Country.mmdb`).
    pub country: Option<PathBuf>,
    /// An ASN database (`GeoLite2-ASN.mmdb`).
    pub asn: Option<PathBuf>,
    /// How often, at most, the files are looked at for a replacement (`30s`).
    pub check_interval: Option<String>,
}

impl GeoipConfig {
    /// `check_interval`, checked: 1 s to 1 day.
    pub fn check_interval(&self) -> anyhow::Result<std::time::Duration> {
        let Some(text) = &self.check_interval else {
            return Ok(pftrack_geo::RELOAD_CHECK_INTERVAL);
        };
        let d = crate::duration::parse(text)
            .with_context(|| format!("geoip.check_interval: {text:?}"))?;
        if d < chrono::TimeDelta::seconds(1) || d > chrono::TimeDelta::days(1) {
            bail!("geoip.check_interval: {text:?} is not between 1s and 1d");
        }
        Ok(d.to_std()?)
    }

    /// The databases, opened (problems are warnings naming the file; see pftrack-geo).
    pub fn open(&self) -> anyhow::Result<pftrack_geo::Geo> {
        Ok(
            pftrack_geo::Geo::open(self.country.as_deref(), self.asn.as_deref())
                .with_check_interval(self.check_interval()?),
        )
    }
}

/// `auth:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// When failures of one client address are a brute-force attack.
    #[serde(default)]
    pub bruteforce: BruteforceConfig,
}

/// `auth: bruteforce:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BruteforceConfig {
    /// Whether `auth.bruteforce` events are raised (when events are enabled).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Failures from one client address within `window` that raise the event.
    #[serde(default = "default_bruteforce_threshold")]
    pub threshold: u32,
    /// The sliding window (`10m`).
    #[serde(default = "default_bruteforce_window")]
    pub window: String,
}

impl Default for BruteforceConfig {
    fn default() -> Self {
        BruteforceConfig {
            enabled: true,
            threshold: default_bruteforce_threshold(),
            window: default_bruteforce_window(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_bruteforce_threshold() -> u32 {
    pftrack_extract::BruteforceRule::default().threshold
}

fn default_bruteforce_window() -> String {
    "10m".to_owned()
}

impl BruteforceConfig {
    /// The rule, `None` when disabled.
    pub fn rule(&self) -> anyhow::Result<Option<pftrack_extract::BruteforceRule>> {
        if !self.enabled {
            return Ok(None);
        }
        let max = pftrack_extract::auth::MAX_BRUTEFORCE_THRESHOLD;
        if self.threshold == 0 || self.threshold > max {
            bail!(
                "auth.bruteforce.threshold: {} is not between 1 and {max}",
                self.threshold
            );
        }
        let window = crate::duration::parse(&self.window)
            .with_context(|| format!("auth.bruteforce.window: {:?}", self.window))?;
        if window < chrono::TimeDelta::seconds(1) || window > chrono::TimeDelta::days(1) {
            bail!(
                "auth.bruteforce.window: {:?} is not between 1s and 1d",
                self.window
            );
        }
        Ok(Some(pftrack_extract::BruteforceRule {
            threshold: self.threshold,
            window,
        }))
    }
}
// END sasl

/// `tags:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsConfig {
    /// Header names (case-insensitive, `client-id`) whose `header_checks` INFO/WARN lines
    /// (`QID: info: header client-id: acme from …`) tag the message `client-id` →
    /// `acme` (`delivery_from.tags`). Empty: no tags.
    #[serde(default)]
    pub headers: Vec<String>,
}

/// `classify:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// User rules file (YAML, docs/classification.md); its rules precede the built-in ones.
    pub rules: Option<PathBuf>,
}

/// `database:` section.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// libpq URL or `key=value` string.
    pub url: Option<String>,
    /// CA certificate for `sslmode=verify-full`.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(pftrack_store::redact_url))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `journal:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Syslog identifier prefixes that are Postfix (`postfix`, `postfix-out`, …).
    #[serde(default = "default_identifiers")]
    pub identifiers: Vec<String>,
    /// Where to start when no cursor is stored: `7d`, a timestamp, or `now`.
    #[serde(default = "default_since")]
    pub since: String,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            identifiers: default_identifiers(),
            since: default_since(),
        }
    }
}

fn default_identifiers() -> Vec<String> {
    vec!["postfix".to_owned()]
}

fn default_since() -> String {
    "7d".to_owned()
}

/// `batch:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Commit after this many records.
    #[serde(default = "default_max_records")]
    pub max_records: usize,
    /// Commit this long after a batch's first record (following only).
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
}

/// Default records per batch when following.
pub const DEFAULT_BATCH_RECORDS: usize = 2000;
/// Default batch age limit when following, in milliseconds.
pub const DEFAULT_BATCH_DELAY_MS: u64 = 250;

fn default_max_records() -> usize {
    DEFAULT_BATCH_RECORDS
}

fn default_max_delay_ms() -> u64 {
    DEFAULT_BATCH_DELAY_MS
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_records: default_max_records(),
            max_delay_ms: default_max_delay_ms(),
        }
    }
}

impl Config {
    /// Read and validate `path`. Errors name the file and, for YAML errors, the line
    /// and column.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let config: Config = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("invalid configuration file {}", path.display()))?;
        config
            .validate()
            .with_context(|| format!("invalid configuration file {}", path.display()))?;
        Ok(config)
    }

    /// Load `path` when given; else the default file when it exists; else defaults.
    pub fn load_or_default(path: Option<&Path>) -> anyhow::Result<Config> {
        match path {
            Some(p) => Config::load(p),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                Config::load(Path::new(DEFAULT_CONFIG_PATH))
            }
            None => Ok(Config::default()),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.events.since()?;
        // BEGIN events (issue 12): secrets are read only by the commands that send.
        self.events.dispatch.settings()?;
        self.events.sweep_rules(None)?;
        self.events.sweep_interval()?;
        // END events
        if self.batch.max_records == 0 {
            bail!("batch.max_records must be at least 1");
        }
        if self.journal.identifiers.iter().any(String::is_empty) {
            bail!("journal.identifiers must not contain an empty prefix");
        }
        if let Some(h) = self
            .tags
            .headers
            .iter()
            .find(|h| h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic() && b != b':'))
        {
            bail!("tags.headers: {h:?} is not a header name (no blanks, no ':')");
        }
        if let Some(r) = &self.retention {
            crate::duration::parse(r).with_context(|| format!("retention: {r:?}"))?;
        }
        // BEGIN metrics (issue 15)
        if let Some(m) = &self.metrics {
            crate::duration::parse(&m.database_interval)
                .with_context(|| format!("metrics.database_interval: {:?}", m.database_interval))?;
        }
        // END metrics
        // BEGIN sasl (issue 14)
        self.auth.bruteforce.rule()?;
        self.geoip.check_interval()?;
        // END sasl
        // BEGIN fleet (issue 16)
        pftrack_store::alias_rows(&self.fleet.host_aliases).map_err(anyhow::Error::msg)?;
        // END fleet
        // BEGIN web (issue 13)
        self.web.settings()?;
        // END web
        if let Some(tz) = &self.timezone {
            tz.parse::<pftrack_input::Zone>()
                .map_err(|e| anyhow::anyhow!("timezone: {e}"))?;
        }
        if let Some(level) = &self.log_level
            && !matches!(
                level.as_str(),
                "error" | "warn" | "info" | "debug" | "trace"
            )
        {
            bail!("log_level: {level:?} is not one of error, warn, info, debug, trace");
        }
        Ok(())
    }

    /// The database URL: `--database-url`/`PFTRACK_DATABASE_URL` first, then the file.
    pub fn database_url(&self, flag: Option<&str>) -> anyhow::Result<String> {
        match flag.or(self.database.url.as_deref()) {
            Some(url) if !url.trim().is_empty() => Ok(url.to_owned()),
            _ => bail!(
                "no database configured: pass --database-url, set PFTRACK_DATABASE_URL, \
                 or set database.url in the configuration file"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/pftrack.example.yaml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.journal.identifiers, vec!["postfix".to_owned()]);
        assert!(config.database.url.is_some());
    }

    // BEGIN sasl (issue 14)
    #[test]
    fn sasl_sections_of_the_example_parse() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/pftrack.example.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let section: String = text
            .lines()
            .skip_while(|l| *l != "# geoip:")
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sasl.yaml");
        std::fs::write(&file, &section).unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(
            config.geoip.asn.as_deref(),
            Some(Path::new("/var/lib/GeoIP/GeoLite2-ASN.mmdb"))
        );
        let rule = config.auth.bruteforce.rule().unwrap().unwrap();
        assert_eq!(rule.threshold, 10);
        assert_eq!(rule.window, chrono::TimeDelta::minutes(10));
        // Defaults: no databases, the same rule.
        assert!(Config::default().geoip.country.is_none());
        assert_eq!(
            Config::default().auth.bruteforce.rule().unwrap(),
            Some(rule)
        );
        for (yaml, complaint) in [
            (
                "auth:\n  bruteforce:\n    threshold: 0\n",
                "auth.bruteforce.threshold",
            ),
            (
                "auth:\n  bruteforce:\n    window: 2d\n",
                "auth.bruteforce.window",
            ),
            (
                "auth:\n  bruteforce:\n    window: soon\n",
                "auth.bruteforce.window",
            ),
            ("geoip:\n  city: /x.mmdb\n", "city"),
            ("geoip:\n  check_interval: 0s\n", "geoip.check_interval"),
        ] {
            std::fs::write(&file, yaml).unwrap();
            let err = format!("{:#}", Config::load(&file).unwrap_err());
            assert!(err.contains(complaint), "{yaml}: {err}");
        }
        std::fs::write(&file, "auth:\n  bruteforce:\n    enabled: false\n").unwrap();
        assert_eq!(
            Config::load(&file).unwrap().auth.bruteforce.rule().unwrap(),
            None
        );
    }
    // END sasl

    // BEGIN fleet (issue 16)
    #[test]
    fn fleet_section_of_the_example_parses_and_bad_aliases_are_refused() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/pftrack.example.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let section: String = text
            .lines()
            .skip_while(|l| *l != "# fleet:")
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fleet.yaml");
        std::fs::write(&file, &section).unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(
            config.fleet.host_aliases["store1"],
            ["lmtp-a.example.internal", "10.0.0.5"]
        );
        std::fs::write(&file, "fleet:\n  host_aliases:\n    a: [x]\n    b: [X]\n").unwrap();
        let err = format!("{:#}", Config::load(&file).unwrap_err());
        assert!(err.contains("\"x\" is given for both"), "{err}");
    }
    // END fleet

    // BEGIN events (issue 12)
    #[test]
    fn events_section_of_the_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/pftrack.example.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let section: String = text
            .lines()
            .skip_while(|l| *l != "# events:")
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.yaml");
        std::fs::write(&file, &section).unwrap();
        let config = Config::load(&file).unwrap();
        assert!(config.events.enabled);
        assert_eq!(
            config.events.recipient_failed.reasons,
            default_failed_reasons()
        );
        let rules = config.events.rules(chrono::Utc::now()).unwrap();
        assert_eq!(
            rules.since,
            chrono::DateTime::from_timestamp(1_767_225_600, 0)
        );
        std::fs::write(&file, "events:\n  since: yesterday\n").unwrap();
        let err = format!("{:#}", Config::load(&file).unwrap_err());
        assert!(err.contains("events.since"), "{err}");
        // Without a section: disabled, default reasons.
        assert!(!Config::default().events.enabled);
    }
    // END events

    #[test]
    fn errors_name_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "database:\n  url: x\nbatch:\n  max_records: lots\n").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("bad.yaml"), "{err}");
        assert!(err.contains("line 4") || err.contains("4:"), "{err}");
    }

    #[test]
    fn tag_headers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tags.yaml");
        std::fs::write(&path, "tags:\n  headers: [client-id, X-Mailer]\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.tags.headers, vec!["client-id", "X-Mailer"]);
        std::fs::write(&path, "tags:\n  headers: ['client-id:']\n").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("tags.headers"), "{err}");
        assert!(Config::default().tags.headers.is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.yaml");
        std::fs::write(&path, "databse:\n  url: x\n").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("databse"), "{err}");
    }
}
