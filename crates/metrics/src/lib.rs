//! pftrack's Prometheus metrics.
//!
//! What it is: one [`Registry`] built at start-up by [`Metrics::register`], holding
//! - [`PostfixMetrics`]: counters and histograms of what Postfix logged, under the names
//!   and labels of kumina's `postfix_exporter` where the semantics match (so existing
//!   dashboards work), filled by the pure function [`observe`] from parsed events;
//! - [`PipelineMetrics`]: pftrack's own (records read, rows written, commit latency,
//!   journal lag, database errors);
//! - [`DbGauges`]: values only the database knows (deferred backlog, messages in flight,
//!   failures by reason over the last hour), set by a refresher task of the binary;
//!
//! and [`serve`], a deliberately tiny HTTP/1.1 responder for `GET /metrics`.
//!
//! What it is not: no global registry, no I/O in [`observe`], no label value taken from
//! a log line's free text (addresses, domains, queue ids, paths): every label is a closed
//! enum of [`labels`], or a configured name with a hard cap: the Postfix instance's
//! syslog name (`service`, [`SERVICES_MAX`]) and pipe transports ([`PIPE_RELAYS_MAX`]). It knows nothing of PostgreSQL; the binary runs the gauge
//! queries. Counters start at zero with the process (Prometheus conventions) and count
//! what this process read.

pub mod labels;
mod serve;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use labels::*;
use pftrack_parse::{Event, NotificationKind, RejectAction, SessionEnd};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub use prometheus_client;
pub use serve::{CLASSIC_CONTENT_TYPE, CONTENT_TYPE, serve};

/// At most this many pipe transport names become `relay` label values; later ones are
/// counted as `other`.
pub const PIPE_RELAYS_MAX: usize = 32;

/// kumina's delay buckets (seconds): 1 ms to two days.
const DELAY_BUCKETS: [f64; 9] = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 60.0, 3600.0, 86400.0, 172800.0];

type Hist = Family<StageLabels, Histogram, fn() -> Histogram>;
type PipeHist = Family<PipeStageLabels, Histogram, fn() -> Histogram>;
type PlainHist = Family<ServiceLabels, Histogram, fn() -> Histogram>;
type F64Gauge = Gauge<f64, AtomicU64>;

fn delay_histogram() -> Histogram {
    Histogram::new(DELAY_BUCKETS)
}

fn nrcpt_histogram() -> Histogram {
    Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])
}

fn size_histogram() -> Histogram {
    Histogram::new([1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9])
}

/// Everything pftrack serves: register once, then share (`Arc<Metrics>`).
#[derive(Debug)]
pub struct Metrics {
    /// What Postfix logged.
    pub postfix: PostfixMetrics,
    /// pftrack's own pipeline.
    pub pipeline: PipelineMetrics,
    /// Values from the database.
    pub db: DbGauges,
}

impl Metrics {
    /// Register every family in `registry` (`postfix_…` and `pftrack_…`), counting
    /// records of `input`.
    pub fn register(registry: &mut Registry, input: Input) -> Metrics {
        let postfix = PostfixMetrics::register(registry.sub_registry_with_prefix("postfix"));
        let pftrack = registry.sub_registry_with_prefix("pftrack");
        let pipeline = PipelineMetrics::register(pftrack, input);
        let db = DbGauges::register(pftrack);
        Metrics {
            postfix,
            pipeline,
            db,
        }
    }

    /// A fresh registry with every metric registered.
    pub fn new(input: Input) -> (Metrics, Registry) {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry, input);
        (metrics, registry)
    }
}

/// Render `registry` as OpenMetrics text (ends with `# EOF`).
pub fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail; an encoder error would be a bug in a metric.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!("encoding the metrics failed: {e}");
    }
    out
}

/// Render `registry` in the classic Prometheus text format 0.0.4, for clients that do
/// not ask for OpenMetrics (curl, `promtool check metrics`, old servers): the same
/// samples, counters' `# HELP`/`# TYPE` named with `_total`, no `# UNIT`, no `# EOF`.
pub fn render_classic(registry: &Registry) -> String {
    let open = render(registry);
    let mut out = String::with_capacity(open.len());
    let lines: Vec<&str> = open.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("# UNIT ") || line == "# EOF" {
            i += 1;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ")
            && let Some(next) = lines.get(i + 1)
            && let Some((name, help)) = rest.split_once(' ')
            && *next == format!("# TYPE {name} counter")
        {
            out.push_str(&format!(
                "# HELP {name}_total {help}\n# TYPE {name}_total counter\n"
            ));
            i += 2;
            continue;
        }
        out.push_str(line);
        out.push('\n');
        i += 1;
    }
    out
}

/// Counters of one label value per variant, resolved at registration.
fn resolve<L: Copy, S, M: Clone>(
    family: &Family<S, M, impl prometheus_client::metrics::family::MetricConstructor<M>>,
    all: &[L],
    labels: impl Fn(L) -> S,
) -> Vec<M>
where
    S: Clone + std::hash::Hash + Eq,
{
    all.iter()
        .map(|&l| family.get_or_create_owned(&labels(l)))
        .collect()
}

/// Postfix's families, with kumina's names (the `postfix_` prefix comes from the
/// sub-registry, `_total` and units from the library), each with a `service` label: the
/// Postfix instance's syslog name.
#[derive(Debug)]
struct Families {
    smtpd_connects: Family<ServiceLabels, Counter>,
    smtpd_disconnects: Family<ServiceLabels, Counter>,
    smtpd_fcrdns_errors: Family<ServiceLabels, Counter>,
    smtpd_lost: Family<AfterStageLabels, Counter>,
    smtpd_processed: Family<SaslLabels, Counter>,
    smtpd_rejected: Family<CodeLabels, Counter>,
    smtpd_sasl_failures: Family<ServiceLabels, Counter>,
    processed: Vec<Family<StatusLabels, Counter>>,
    smtp_deferred: Family<ServiceLabels, Counter>,
    smtp_timed_out: Family<ServiceLabels, Counter>,
    smtp_connect_failures: Family<ConnectFailureLabels, Counter>,
    smtp_delays: Hist,
    lmtp_delays: Hist,
    pipe_delays: PipeHist,
    virtual_delivered: Family<ServiceLabels, Counter>,
    cleanup_processed: Family<ServiceLabels, Counter>,
    cleanup_rejected: Family<ServiceLabels, Counter>,
    qmgr_nrcpt: PlainHist,
    qmgr_nrcpt_legacy: PlainHist,
    qmgr_size: PlainHist,
    qmgr_removed: Family<ServiceLabels, Counter>,
    qmgr_expired: Family<ServiceLabels, Counter>,
    bounce_non_delivery: Family<ServiceLabels, Counter>,
    postscreen: Family<PostscreenLabels, Counter>,
    unsupported: Family<UnsupportedLabels, Counter>,
}

/// One instance's series, resolved once (the hot path does no label hashing).
#[derive(Debug)]
struct Handles {
    service: ServiceName,
    smtpd_connects: Counter,
    smtpd_disconnects: Counter,
    smtpd_fcrdns_errors: Counter,
    smtpd_lost: Vec<Counter>,
    smtpd_processed: Vec<Counter>,
    smtpd_sasl_failures: Counter,
    /// `[agent][status]`
    processed: Vec<Vec<Counter>>,
    smtp_deferred: Counter,
    smtp_timed_out: Counter,
    smtp_connect_failures: Vec<Counter>,
    smtp_delays: Vec<Histogram>,
    lmtp_delays: Vec<Histogram>,
    virtual_delivered: Counter,
    cleanup_processed: Counter,
    cleanup_rejected: Counter,
    qmgr_nrcpt: Histogram,
    qmgr_nrcpt_legacy: Histogram,
    qmgr_size: Histogram,
    qmgr_removed: Counter,
    qmgr_expired: Counter,
    bounce_non_delivery: Counter,
    postscreen: Vec<Counter>,
    unsupported: Vec<Counter>,
}

/// At most this many Postfix instances (syslog names) get their own `service` value;
/// records of later ones count as `other`.
pub const SERVICES_MAX: usize = 16;

/// Postfix's counters and histograms, per instance.
#[derive(Debug)]
pub struct PostfixMetrics {
    families: Families,
    services: RwLock<Vec<Arc<Handles>>>,
    pipe_relays: Mutex<Vec<String>>,
}

impl PostfixMetrics {
    /// Register in `r` (prefix `postfix` expected).
    pub fn register(r: &mut Registry) -> PostfixMetrics {
        fn counter(r: &mut Registry, name: &str, help: &str) -> Family<ServiceLabels, Counter> {
            let c = Family::<ServiceLabels, Counter>::default();
            r.register(name, help, c.clone());
            c
        }
        fn family<S>(r: &mut Registry, name: &str, help: &str) -> Family<S, Counter>
        where
            S: Clone + std::hash::Hash + Eq + prometheus_client::encoding::EncodeLabelSet,
            S: Send + Sync + std::fmt::Debug + 'static,
        {
            let c = Family::<S, Counter>::default();
            r.register(name, help, c.clone());
            c
        }
        fn hist(r: &mut Registry, name: &str, help: &str) -> Hist {
            let family: Hist = Family::new_with_constructor(delay_histogram);
            r.register_with_unit(name, help, Unit::Seconds, family.clone());
            family
        }
        let smtpd_connects = counter(r, "smtpd_connects", "Total number of incoming connections");
        let smtpd_disconnects = counter(
            r,
            "smtpd_disconnects",
            "Total number of incoming disconnections",
        );
        let smtpd_fcrdns_errors = counter(
            r,
            "smtpd_forward_confirmed_reverse_dns_errors",
            "Total number of connections for which forward-confirmed DNS cannot be resolved",
        );
        let smtpd_lost = family(
            r,
            "smtpd_connections_lost",
            "Total number of connections lost",
        );
        let smtpd_processed = family(
            r,
            "smtpd_messages_processed",
            "Total number of messages processed",
        );
        let smtpd_rejected = family(
            r,
            "smtpd_messages_rejected",
            "Total number of NOQUEUE rejects",
        );
        let smtpd_sasl_failures = counter(
            r,
            "smtpd_sasl_authentication_failures",
            "Total number of SASL authentication failures",
        );
        let processed = Agent::ALL
            .iter()
            .map(|agent| {
                let family = Family::<StatusLabels, Counter>::default();
                r.register(
                    format!("{}_messages_processed", agent.as_str()),
                    format!(
                        "Total number of messages that have been processed by the {} process",
                        agent.as_str()
                    ),
                    family.clone(),
                );
                family
            })
            .collect();
        let smtp_deferred = counter(
            r,
            "smtp_deferred_messages",
            "Total number of messages that have been deferred on SMTP",
        );
        let smtp_timed_out = counter(
            r,
            "smtp_connection_timed_out",
            "Total number of SMTP connection attempts that timed out",
        );
        let smtp_connect_failures = family(
            r,
            "smtp_connection_failures",
            "Total number of SMTP connection attempts that failed, by reason",
        );
        let smtp_delays = hist(
            r,
            "smtp_delivery_delay",
            "SMTP message processing time in seconds",
        );
        let lmtp_delays = hist(
            r,
            "lmtp_delivery_delay",
            "LMTP message processing time in seconds",
        );
        let pipe_delays: PipeHist = Family::new_with_constructor(delay_histogram);
        r.register_with_unit(
            "pipe_delivery_delay",
            "Pipe message processing time in seconds",
            Unit::Seconds,
            pipe_delays.clone(),
        );
        let virtual_delivered = counter(
            r,
            "virtual_delivered",
            "Total number of mail delivered to a virtual mailbox",
        );
        let cleanup_processed = counter(
            r,
            "cleanup_messages_processed",
            "Total number of messages processed by cleanup",
        );
        let cleanup_rejected = counter(
            r,
            "cleanup_messages_rejected",
            "Total number of messages rejected by cleanup",
        );
        let qmgr_nrcpt: PlainHist = Family::new_with_constructor(nrcpt_histogram);
        r.register(
            "qmgr_messages_inserted_recipients",
            "Number of recipients per message inserted into the mail queues",
            qmgr_nrcpt.clone(),
        );
        let qmgr_nrcpt_legacy: PlainHist = Family::new_with_constructor(nrcpt_histogram);
        r.register(
            "qmgr_messages_inserted_receipients",
            "Legacy name (kumina's spelling) of postfix_qmgr_messages_inserted_recipients",
            qmgr_nrcpt_legacy.clone(),
        );
        let qmgr_size: PlainHist = Family::new_with_constructor(size_histogram);
        r.register_with_unit(
            "qmgr_messages_inserted_size",
            "Size of messages inserted into the mail queues in bytes",
            Unit::Bytes,
            qmgr_size.clone(),
        );
        let qmgr_removed = counter(
            r,
            "qmgr_messages_removed",
            "Total number of messages removed from mail queues",
        );
        let qmgr_expired = counter(
            r,
            "qmgr_messages_expired",
            "Total number of messages expired from mail queues",
        );
        let bounce_non_delivery = counter(
            r,
            "bounce_non_delivery_notification",
            "Total number of non delivery notification sent by bounce",
        );
        let postscreen = family(
            r,
            "postscreen_events",
            "Total number of postscreen steps and verdicts, by kind",
        );
        let unsupported = family(
            r,
            "unsupported_log_entries",
            "Log entries that could not be processed",
        );
        let families = Families {
            smtpd_connects,
            smtpd_disconnects,
            smtpd_fcrdns_errors,
            smtpd_lost,
            smtpd_processed,
            smtpd_rejected,
            smtpd_sasl_failures,
            processed,
            smtp_deferred,
            smtp_timed_out,
            smtp_connect_failures,
            smtp_delays,
            lmtp_delays,
            pipe_delays,
            virtual_delivered,
            cleanup_processed,
            cleanup_rejected,
            qmgr_nrcpt,
            qmgr_nrcpt_legacy,
            qmgr_size,
            qmgr_removed,
            qmgr_expired,
            bounce_non_delivery,
            postscreen,
            unsupported,
        };
        PostfixMetrics {
            families,
            services: RwLock::new(Vec::new()),
            pipe_relays: Mutex::new(Vec::new()),
        }
    }

    /// The series of instance `service`, created at its first record (all its series
    /// start at zero then).
    fn handles(&self, service: &str) -> Arc<Handles> {
        {
            let seen = self.services.read().unwrap_or_else(|p| p.into_inner());
            if let Some(h) = seen.iter().find(|h| &*h.service.0 == service) {
                return Arc::clone(h);
            }
        }
        let mut seen = self.services.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = seen.iter().find(|h| &*h.service.0 == service) {
            return Arc::clone(h);
        }
        let name = if seen.len() < SERVICES_MAX {
            service
        } else {
            "other"
        };
        if let Some(h) = seen.iter().find(|h| &*h.service.0 == name) {
            return Arc::clone(h);
        }
        let h = Arc::new(self.resolve_service(ServiceName(Arc::from(name))));
        seen.push(Arc::clone(&h));
        h
    }

    fn resolve_service(&self, service: ServiceName) -> Handles {
        let f = &self.families;
        let s = || service.clone();
        let one = |family: &Family<ServiceLabels, Counter>| {
            family.get_or_create_owned(&ServiceLabels { service: s() })
        };
        Handles {
            smtpd_connects: one(&f.smtpd_connects),
            smtpd_disconnects: one(&f.smtpd_disconnects),
            smtpd_fcrdns_errors: one(&f.smtpd_fcrdns_errors),
            smtpd_lost: resolve(&f.smtpd_lost, AfterStage::ALL, |after_stage| {
                AfterStageLabels {
                    after_stage,
                    service: s(),
                }
            }),
            smtpd_processed: resolve(&f.smtpd_processed, SaslMethod::ALL, |sasl_method| {
                SaslLabels {
                    sasl_method,
                    service: s(),
                }
            }),
            smtpd_sasl_failures: one(&f.smtpd_sasl_failures),
            processed: f
                .processed
                .iter()
                .map(|family| {
                    resolve(family, Status::ALL, |status| StatusLabels {
                        status,
                        service: s(),
                    })
                })
                .collect(),
            smtp_deferred: one(&f.smtp_deferred),
            smtp_timed_out: one(&f.smtp_timed_out),
            smtp_connect_failures: resolve(
                &f.smtp_connect_failures,
                ConnectFailure::ALL,
                |reason| ConnectFailureLabels {
                    reason,
                    service: s(),
                },
            ),
            smtp_delays: resolve(&f.smtp_delays, Stage::ALL, |stage| StageLabels {
                stage,
                service: s(),
            }),
            lmtp_delays: resolve(&f.lmtp_delays, Stage::ALL, |stage| StageLabels {
                stage,
                service: s(),
            }),
            virtual_delivered: one(&f.virtual_delivered),
            cleanup_processed: one(&f.cleanup_processed),
            cleanup_rejected: one(&f.cleanup_rejected),
            qmgr_nrcpt: f
                .qmgr_nrcpt
                .get_or_create_owned(&ServiceLabels { service: s() }),
            qmgr_nrcpt_legacy: f
                .qmgr_nrcpt_legacy
                .get_or_create_owned(&ServiceLabels { service: s() }),
            qmgr_size: f
                .qmgr_size
                .get_or_create_owned(&ServiceLabels { service: s() }),
            qmgr_removed: one(&f.qmgr_removed),
            qmgr_expired: one(&f.qmgr_expired),
            bounce_non_delivery: one(&f.bounce_non_delivery),
            postscreen: resolve(&f.postscreen, PostscreenEvent::ALL, |event| {
                PostscreenLabels {
                    event,
                    service: s(),
                }
            }),
            unsupported: resolve(&f.unsupported, Daemon::ALL, |daemon| UnsupportedLabels {
                daemon,
                service: s(),
            }),
            service,
        }
    }

    /// The `relay` label of a pipe transport: its name while fewer than
    /// [`PIPE_RELAYS_MAX`] were seen, else `other` (names that look like addresses too).
    fn pipe_relay(&self, relay: Option<&str>) -> String {
        let Some(name) = relay else {
            return "other".to_owned();
        };
        let plausible = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plausible {
            return "other".to_owned();
        }
        let mut seen = match self.pipe_relays.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.iter().any(|s| s == name) {
            return name.to_owned();
        }
        if seen.len() < PIPE_RELAYS_MAX {
            seen.push(name.to_owned());
            return name.to_owned();
        }
        "other".to_owned()
    }
}

/// Count one parsed record of the default instance (`service="postfix"`): see
/// [`observe_service`].
pub fn observe(metrics: &Metrics, daemon: &str, event: &Event<'_>) {
    observe_service(metrics, "postfix", daemon, event);
}

/// Count one parsed Postfix record of daemon `daemon` (the syslog identifier's last
/// part) of the instance `service` (the identifier before it: `postfix`,
/// `postfix-out`, `postfix/submission`). Pure apart from the atomic increments: no I/O,
/// no allocation except for a new instance and for pipe deliveries.
pub fn observe_service(metrics: &Metrics, service: &str, daemon: &str, event: &Event<'_>) {
    let p = &metrics.pipeline;
    if event.is_recognized() {
        p.records_recognized.inc();
    } else {
        p.records_unknown.inc();
    }
    let postfix = &metrics.postfix;
    let m = &*postfix.handles(service);
    let postscreen = |e: PostscreenEvent| {
        m.postscreen[e as usize].inc();
    };
    match event {
        Event::Connect { .. } if daemon == "smtpd" => {
            m.smtpd_connects.inc();
        }
        Event::Disconnect { .. } if daemon == "smtpd" => {
            m.smtpd_disconnects.inc();
        }
        Event::SmtpdClient { sasl_method, .. } if daemon == "smtpd" => {
            m.smtpd_processed[SaslMethod::from_name(*sasl_method) as usize].inc();
        }
        Event::Reject(r) => {
            if daemon == "cleanup" {
                m.cleanup_rejected.inc();
            } else if daemon == "smtpd"
                && r.queue_id.is_none()
                && matches!(r.action, RejectAction::Reject)
            {
                postfix
                    .families
                    .smtpd_rejected
                    .get_or_create(&CodeLabels {
                        code: ReplyCode::new(r.code),
                        service: m.service.clone(),
                    })
                    .inc();
            }
        }
        Event::ContentCheck(c) if daemon == "cleanup" => {
            if matches!(c.action, RejectAction::Reject | RejectAction::MilterReject) {
                m.cleanup_rejected.inc();
            }
        }
        Event::SessionEnded {
            how: SessionEnd::LostConnection,
            stage,
            ..
        } if daemon == "smtpd" => {
            m.smtpd_lost[AfterStage::from_word(stage) as usize].inc();
        }
        Event::SaslFailed { .. } => {
            m.smtpd_sasl_failures.inc();
        }
        Event::Warning { text, .. }
            if daemon == "smtpd"
                && text.starts_with("hostname ")
                && text.contains(" does not resolve to address ") =>
        {
            m.smtpd_fcrdns_errors.inc();
        }
        Event::PostscreenConnect { .. } => postscreen(PostscreenEvent::Connect),
        Event::PostscreenPass { new, .. } => postscreen(if *new {
            PostscreenEvent::PassNew
        } else {
            PostscreenEvent::PassOld
        }),
        Event::PostscreenDnsblRank { .. } => postscreen(PostscreenEvent::DnsblRank),
        Event::PostscreenPregreet { .. } => postscreen(PostscreenEvent::Pregreet),
        Event::PostscreenHangup { .. } => postscreen(PostscreenEvent::Hangup),
        Event::PostscreenDisconnect { .. } => postscreen(PostscreenEvent::Disconnect),
        Event::PostscreenListed { .. } => postscreen(PostscreenEvent::Listed),
        Event::PostscreenViolation { .. } => postscreen(PostscreenEvent::Violation),
        Event::MessageId { .. } if daemon == "cleanup" => {
            m.cleanup_processed.inc();
        }
        Event::QueueActive { size, nrcpt, .. } => {
            if let (Some(size), Some(nrcpt)) = (size, nrcpt) {
                m.qmgr_size.observe(*size as f64);
                m.qmgr_nrcpt.observe(f64::from(*nrcpt));
                m.qmgr_nrcpt_legacy.observe(f64::from(*nrcpt));
            }
        }
        Event::Removed { .. } => {
            m.qmgr_removed.inc();
        }
        Event::Expired { .. } => {
            m.qmgr_expired.inc();
        }
        Event::Delivery(d) => {
            let Some(agent) = Agent::from_name(daemon) else {
                return;
            };
            let status = Status::from(d.status);
            m.processed[agent as usize][status as usize].inc();
            if agent == Agent::Smtp && status == Status::Deferred {
                m.smtp_deferred.inc();
            }
            if agent == Agent::Virtual && status == Status::Sent {
                m.virtual_delivered.inc();
            }
            if let Some(delays) = d.delays {
                let values = [
                    delays.before_qmgr,
                    delays.in_qmgr,
                    delays.conn_setup,
                    delays.transmission,
                ];
                match agent {
                    Agent::Smtp => {
                        for (h, v) in m.smtp_delays.iter().zip(values) {
                            h.observe(f64::from(v));
                        }
                    }
                    Agent::Lmtp => {
                        for (h, v) in m.lmtp_delays.iter().zip(values) {
                            h.observe(f64::from(v));
                        }
                    }
                    Agent::Pipe => {
                        let relay = postfix.pipe_relay(d.relay);
                        for (&stage, v) in Stage::ALL.iter().zip(values) {
                            postfix
                                .families
                                .pipe_delays
                                .get_or_create(&PipeStageLabels {
                                    relay: relay.clone(),
                                    stage,
                                    service: m.service.clone(),
                                })
                                .observe(f64::from(v));
                        }
                    }
                    _ => {}
                }
            }
        }
        Event::ConnectFailed { reason, .. } if daemon == "smtp" => {
            let failure = ConnectFailure::from_text(reason);
            m.smtp_connect_failures[failure as usize].inc();
            if failure == ConnectFailure::TimedOut {
                m.smtp_timed_out.inc();
            }
        }
        Event::Notification {
            notification: NotificationKind::NonDelivery,
            ..
        } => {
            m.bounce_non_delivery.inc();
        }
        Event::Unknown { .. } => {
            m.unsupported[Daemon::from_name(daemon) as usize].inc();
        }
        _ => {}
    }
}

/// pftrack's own counters (prefix `pftrack`).
#[derive(Debug)]
pub struct PipelineMetrics {
    /// Records read from the input.
    pub records_read: Counter,
    /// Records whose identifier is Postfix's.
    pub records_postfix: Counter,
    /// Postfix records the parser recognised.
    pub records_recognized: Counter,
    /// Postfix records the parser did not recognise.
    pub records_unknown: Counter,
    /// Lines that were not syslog records.
    pub records_malformed: Counter,
    rows: Vec<Counter>,
    /// Batches committed.
    pub batches: Counter,
    /// Commit latency of a batch.
    pub commit_seconds: Histogram,
    /// Now − the newest committed entry's time, at the last commit.
    pub journal_lag_seconds: F64Gauge,
    /// Time of the newest committed entry (Unix seconds).
    pub last_committed_entry: F64Gauge,
    db_errors: Vec<Counter>,
    /// Failed commits retried.
    pub commit_retries: Counter,
}

impl PipelineMetrics {
    /// Register in `r` (prefix `pftrack` expected), for records of `input`.
    pub fn register(r: &mut Registry, input: Input) -> PipelineMetrics {
        let per_input = |r: &mut Registry, name: &str, help: &str| {
            let family = Family::<InputLabels, Counter>::default();
            r.register(name, help, family.clone());
            family.get_or_create_owned(&InputLabels { input })
        };
        let records_read = per_input(r, "records_read", "Syslog records read, per input");
        let records_postfix = per_input(
            r,
            "records_postfix",
            "Records whose syslog identifier is Postfix's, per input",
        );
        let records_recognized = per_input(
            r,
            "records_recognized",
            "Postfix records the parser recognised, per input",
        );
        let records_unknown = per_input(
            r,
            "records_unknown",
            "Postfix records the parser did not recognise, per input",
        );
        let records_malformed = per_input(
            r,
            "records_malformed",
            "Lines that are not syslog records, per input",
        );
        let rows = Family::<TableLabels, Counter>::default();
        r.register(
            "rows_written",
            "Rows upserted by committed batches, per table",
            rows.clone(),
        );
        let batches = Counter::default();
        r.register("batches_committed", "Batches committed", batches.clone());
        let commit_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 14),
        );
        r.register_with_unit(
            "batch_commit_duration",
            "Time to commit one batch (a successful attempt)",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        let journal_lag_seconds = F64Gauge::default();
        r.register_with_unit(
            "journal_lag",
            "How long after it was logged the newest record of the last batch was committed",
            Unit::Seconds,
            journal_lag_seconds.clone(),
        );
        let last_committed_entry = F64Gauge::default();
        r.register_with_unit(
            "last_committed_entry_timestamp",
            "When the newest committed record was logged (Unix time)",
            Unit::Seconds,
            last_committed_entry.clone(),
        );
        let db_errors = Family::<OperationLabels, Counter>::default();
        r.register(
            "database_errors",
            "Failed database operations, per operation",
            db_errors.clone(),
        );
        let commit_retries = Counter::default();
        r.register(
            "database_commit_retries",
            "Commits retried after a transient database failure",
            commit_retries.clone(),
        );
        PipelineMetrics {
            records_read,
            records_postfix,
            records_recognized,
            records_unknown,
            records_malformed,
            rows: resolve(&rows, Table::ALL, |table| TableLabels { table }),
            batches,
            commit_seconds,
            journal_lag_seconds,
            last_committed_entry,
            db_errors: resolve(&db_errors, Operation::ALL, |operation| OperationLabels {
                operation,
            }),
            commit_retries,
        }
    }

    /// Count `n` rows written to `table`.
    pub fn rows_written(&self, table: Table, n: u64) {
        self.rows[table as usize].inc_by(n);
    }

    /// Count a failed database operation.
    pub fn database_error(&self, operation: Operation) {
        self.db_errors[operation as usize].inc();
    }
}

/// Gauges from the database, set by the binary's refresher task.
#[derive(Debug)]
pub struct DbGauges {
    /// Recipients whose latest status is deferred.
    pub recipients_deferred: Gauge,
    /// Age of the oldest deferred recipient's message.
    pub oldest_deferred_age_seconds: F64Gauge,
    /// Messages whose life has not ended.
    pub messages_in_flight: Gauge,
    failures: Vec<Gauge>,
    failures_other: Gauge,
    /// When the gauges were last refreshed (Unix time).
    pub refreshed_at: F64Gauge,
}

impl DbGauges {
    /// Register in `r` (prefix `pftrack` expected).
    pub fn register(r: &mut Registry) -> DbGauges {
        let recipients_deferred = Gauge::default();
        r.register(
            "recipients_deferred",
            "Recipients whose latest status is deferred (messages arrived within 7 days)",
            recipients_deferred.clone(),
        );
        let oldest_deferred_age_seconds = F64Gauge::default();
        r.register_with_unit(
            "oldest_deferred_recipient_age",
            "Age of the message of the oldest deferred recipient (0 when none)",
            Unit::Seconds,
            oldest_deferred_age_seconds.clone(),
        );
        let messages_in_flight = Gauge::default();
        r.register(
            "messages_in_flight",
            "Messages whose life has not ended (not removed, not rejected, seen within 7 days)",
            messages_in_flight.clone(),
        );
        let family = Family::<ReasonLabels, Gauge>::default();
        r.register(
            "failures_last_hour",
            "Failed delivery attempts of the last hour, by classified reason",
            family.clone(),
        );
        let failures = pftrack_classify::Reason::ALL
            .iter()
            .map(|&reason| {
                family.get_or_create_owned(&ReasonLabels {
                    reason: ReasonLabel(Some(reason)),
                })
            })
            .collect();
        let failures_other = family.get_or_create_owned(&ReasonLabels {
            reason: ReasonLabel(None),
        });
        let refreshed_at = F64Gauge::default();
        r.register_with_unit(
            "database_gauges_refreshed_timestamp",
            "When the database gauges were last refreshed (Unix time)",
            Unit::Seconds,
            refreshed_at.clone(),
        );
        DbGauges {
            recipients_deferred,
            oldest_deferred_age_seconds,
            messages_in_flight,
            failures,
            failures_other,
            refreshed_at,
        }
    }

    /// Set the failures of the last hour: `counts` by stored reason name; reasons
    /// absent from it are set to 0, names this version does not know count as `other`.
    pub fn set_failures<'a>(&self, counts: impl IntoIterator<Item = (&'a str, i64)>) {
        let mut values = vec![0i64; self.failures.len()];
        let mut other = 0;
        for (name, n) in counts {
            match name.parse::<pftrack_classify::Reason>() {
                Ok(reason) => {
                    if let Some(i) = pftrack_classify::Reason::ALL
                        .iter()
                        .position(|r| *r == reason)
                    {
                        values[i] += n;
                    }
                }
                Err(_) => other += n,
            }
        }
        for (gauge, v) in self.failures.iter().zip(values) {
            gauge.set(v);
        }
        self.failures_other.set(other);
    }
}

#[cfg(test)]
mod tests;
