//! Fleet mode: the logs of several Postfix hosts that relay mail to each other, one
//! log per host, with consistent `queued as` chains between them.
//!
//! The fleet of [`fleet_hosts`] has four roles:
//! * **mx** (inbound tier): receives mail from the Internet (`client=` a remote
//!   server) and relays it to the store host of the recipient's domain
//!   (`relay=storeN.fleet.internal[10.0.1.N]:25 … 250 2.0.0 Ok: queued as QID`);
//! * **store** (mailbox hosts): receives from an mx (`client=mxN.fleet.example[10.0.0.N]`)
//!   and delivers over LMTP to the mailbox, or bounces (mailbox full, unknown user);
//!   its non-delivery notification (`message-id=<YYYYMMDDHHMMSS.QID@storeN…>`) goes
//!   back through the mx that brought the mail, which relays it out;
//! * **submit** (submission hosts): authenticated users (`sasl_method=PLAIN`) relayed to
//!   the smarthost;
//! * **smarthost**: receives from the submission hosts and delivers to the Internet
//!   (sent, or bounced by the remote server).
//!
//! Every host gets short hexadecimal queue ids of its own, unique within the run. Lines
//! of each host are written to that host's writer in time order. Memory is bounded by
//! the messages under way (a few seconds of traffic).
//!
//! Like the single-host generator, this is **not** a simulator: timings and shares are
//! plausible, not measured; only the log lines are produced.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use chrono::{NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::StampFormat;
use crate::data::{REMOTE, USERS};
use crate::stamp::StampWriter;

/// Fewest hosts of a fleet: one of each role.
pub const MIN_FLEET_HOSTS: usize = 4;

/// Most hosts of a fleet (addresses are drawn from /24 ranges).
pub const MAX_FLEET_HOSTS: usize = 200;

/// The latest a line of a message is written after the message arrived (the longest
/// chain: mx → store → bounce → mx → out), microseconds. Lines older than the current
/// arrival minus this are final and are written out.
const MAX_CHAIN_SPAN_US: i64 = 30 * 1_000_000;

/// Bytes buffered per host before a write.
const OUT_CHUNK: usize = 256 * 1024;

/// Domain of the fleet's own users (hosted on the store hosts).
const FLEET_DOMAINS: &[&str] = &["fleet.example", "users.fleet.example", "corp.fleet.example"];

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Seed; the output is a function of the whole config.
    pub seed: u64,
    /// Number of hosts (at least [`MIN_FLEET_HOSTS`], at most [`MAX_FLEET_HOSTS`]).
    pub hosts: usize,
    /// Messages entering the fleet (from the Internet or from users); each makes 6 to
    /// 25 lines over the hosts it passes.
    pub messages: u64,
    /// Stamp format.
    pub format: StampFormat,
    /// Local time (UTC in RFC 3339 stamps) of the first arrival.
    pub start: NaiveDateTime,
    /// Mean rate of messages entering the fleet, per second.
    pub messages_per_second: f64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            seed: 1,
            hosts: 20,
            messages: 10_000,
            format: StampFormat::Rfc3339,
            start: NaiveDate::from_ymd_opt(2025, 3, 14)
                .and_then(|d| d.and_hms_opt(6, 0, 0))
                .unwrap_or_default(),
            messages_per_second: 50.0,
        }
    }
}

/// What a host of the fleet does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Inbound MX.
    Mx,
    /// Mailbox host.
    Store,
    /// Submission host.
    Submit,
    /// Outbound relay.
    Smarthost,
}

/// One host of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetHost {
    /// Syslog host name (short): `mx1`, `store3`, `submit1`, `smarthost1`.
    pub name: String,
    /// Name other hosts use for it (its myhostname).
    pub fqdn: String,
    /// Its address.
    pub ip: String,
    /// What it does.
    pub role: Role,
}

/// The hosts of a fleet of `n`: a quarter mx (at least one), half store, one
/// smarthost, the rest submission hosts (at least one).
pub fn fleet_hosts(n: usize) -> Vec<FleetHost> {
    let n = n.clamp(MIN_FLEET_HOSTS, MAX_FLEET_HOSTS);
    let mx = (n / 4).max(1);
    let store = (n / 2).max(1);
    let submit = n - mx - store - 1;
    let mut hosts = Vec::with_capacity(n);
    let mut add = |role: Role, prefix: &str, count: usize, net: u8, domain: &str| {
        for i in 1..=count {
            hosts.push(FleetHost {
                name: format!("{prefix}{i}"),
                fqdn: format!("{prefix}{i}.{domain}"),
                ip: format!("10.0.{net}.{i}"),
                role,
            });
        }
    };
    add(Role::Mx, "mx", mx, 0, "fleet.example");
    add(Role::Store, "store", store, 1, "fleet.internal");
    add(Role::Submit, "submit", submit, 3, "fleet.example");
    add(Role::Smarthost, "smarthost", 1, 2, "fleet.internal");
    hosts
}

/// Counts of what [`generate_fleet`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// Lines written, all hosts.
    pub lines: u64,
    /// Lines per host, in the order of [`fleet_hosts`].
    pub lines_per_host: Vec<u64>,
    /// Messages entering the fleet from the Internet.
    pub inbound: u64,
    /// Messages submitted by users.
    pub outbound: u64,
    /// Recipients of inbound mail delivered to a mailbox.
    pub delivered: u64,
    /// Recipients of inbound mail bounced at a store host (each bounce's notification
    /// travels back through an mx).
    pub bounced_at_store: u64,
    /// Recipients of outbound mail bounced by the remote server at the smarthost.
    pub bounced_at_smarthost: u64,
    /// Hand-offs from one host of the fleet to another (`queued as` a fleet message),
    /// per recipient: the links a tracker should find.
    pub relay_links: u64,
}

struct Line {
    t: i64,
    seq: u64,
    text: String,
}

impl PartialEq for Line {
    fn eq(&self, other: &Self) -> bool {
        (self.t, self.seq) == (other.t, other.seq)
    }
}
impl Eq for Line {}
impl PartialOrd for Line {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Line {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.t, self.seq).cmp(&(other.t, other.seq))
    }
}

struct Fleet<'w> {
    rng: ChaCha8Rng,
    hosts: Vec<FleetHost>,
    pending: Vec<BinaryHeap<Reverse<Line>>>,
    bufs: Vec<String>,
    outs: &'w mut [Box<dyn Write>],
    stamps: StampWriter,
    seq: u64,
    /// Per host: queue ids handed out (the id is a bijective scramble of it).
    counters: Vec<u64>,
    salts: Vec<u64>,
    pids: Vec<u32>,
    stats: FleetStats,
}

/// Write the logs of a fleet, host `i` of [`fleet_hosts`]`(config.hosts)` to `outs[i]`.
pub fn generate_fleet(config: &FleetConfig, outs: &mut [Box<dyn Write>]) -> io::Result<FleetStats> {
    let hosts = fleet_hosts(config.hosts);
    if outs.len() != hosts.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} writers for {} hosts", outs.len(), hosts.len()),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n = hosts.len();
    let salts = (0..n).map(|_| rng.random::<u64>()).collect();
    let pids = (0..n).map(|i| 1000 + (i as u32) * 1000).collect();
    let mut f = Fleet {
        rng,
        pending: (0..n).map(|_| BinaryHeap::new()).collect(),
        bufs: (0..n)
            .map(|_| String::with_capacity(OUT_CHUNK + 4096))
            .collect(),
        outs,
        stamps: StampWriter::new(config.format, config.start, 0),
        seq: 0,
        counters: vec![0; n],
        salts,
        pids,
        stats: FleetStats {
            lines_per_host: vec![0; n],
            ..FleetStats::default()
        },
        hosts,
    };
    let mean_gap_us = 1_000_000.0 / config.messages_per_second.max(0.001);
    let mut t: i64 = 0;
    for _ in 0..config.messages {
        let u: f64 = f.rng.random_range(f64::EPSILON..1.0);
        t += (-u.ln() * mean_gap_us) as i64 + 1;
        if f.rng.random_bool(0.7) {
            f.inbound(t);
        } else {
            f.outbound(t);
        }
        f.emit_before(t - MAX_CHAIN_SPAN_US)?;
    }
    f.emit_before(i64::MAX)?;
    for i in 0..f.bufs.len() {
        f.flush(i)?;
    }
    Ok(f.stats)
}

impl Fleet<'_> {
    fn of(&self, role: Role) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| self.hosts[i].role == role)
            .collect()
    }

    fn pick_of(&mut self, role: Role) -> usize {
        let all = self.of(role);
        all[self.rng.random_range(0..all.len())]
    }

    fn ms(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo * 1000..=hi * 1000)
    }

    /// A new queue id of host `h`: 10 upper-case hex digits, unique in the run (a
    /// bijection of a per-host counter on 40 bits — xor with a salt, then times an odd
    /// number modulo 2^40 — so ids look random and never repeat).
    fn qid(&mut self, h: usize) -> String {
        const MASK: u64 = 0xFF_FFFF_FFFF;
        self.counters[h] += 1;
        let x =
            ((self.counters[h] ^ self.salts[h]) & MASK).wrapping_mul(0x9E37_79B9_7F4A_7C15) & MASK;
        format!("{x:010X}")
    }

    fn pid(&mut self, h: usize, daemon: u32) -> u32 {
        self.pids[h] + daemon * 100 + self.rng.random_range(0..50)
    }

    fn log(&mut self, t: i64, h: usize, ident: &str, daemon: u32, text: String) {
        let pid = self.pid(h, daemon);
        self.seq += 1;
        self.pending[h].push(Reverse(Line {
            t,
            seq: self.seq,
            text: format!("{ident}[{pid}]: {text}"),
        }));
    }

    fn emit_before(&mut self, t: i64) -> io::Result<()> {
        for h in 0..self.hosts.len() {
            while self.pending[h].peek().is_some_and(|Reverse(l)| l.t < t) {
                let Some(Reverse(line)) = self.pending[h].pop() else {
                    break;
                };
                let buf = &mut self.bufs[h];
                self.stamps.write(line.t, buf);
                buf.push(' ');
                buf.push_str(&self.hosts[h].name);
                buf.push(' ');
                buf.push_str(&line.text);
                buf.push('\n');
                self.stats.lines += 1;
                self.stats.lines_per_host[h] += 1;
                if buf.len() >= OUT_CHUNK {
                    self.flush(h)?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, h: usize) -> io::Result<()> {
        self.outs[h].write_all(self.bufs[h].as_bytes())?;
        self.bufs[h].clear();
        Ok(())
    }

    fn message_id(&mut self, domain: &str) -> String {
        let a: u64 = self.rng.random();
        format!("{a:016x}@{domain}")
    }

    /// The receiving half of an SMTP hand-off on host `h`: smtpd, cleanup, qmgr.
    /// Returns the new queue id and when qmgr took it.
    #[allow(clippy::too_many_arguments)]
    fn receive(
        &mut self,
        h: usize,
        t: i64,
        client: &str,
        sasl: Option<&str>,
        message_id: &str,
        sender: &str,
        size: u64,
        nrcpt: usize,
    ) -> (String, i64) {
        let q = self.qid(h);
        self.log(t, h, "postfix/smtpd", 1, format!("connect from {client}"));
        let t1 = t + self.ms(20, 200);
        let sasl = sasl
            .map(|u| format!(", sasl_method=PLAIN, sasl_username={u}"))
            .unwrap_or_default();
        self.log(
            t1,
            h,
            "postfix/smtpd",
            1,
            format!("{q}: client={client}{sasl}"),
        );
        let t2 = t1 + self.ms(5, 50);
        self.log(
            t2,
            h,
            "postfix/cleanup",
            2,
            format!("{q}: message-id=<{message_id}>"),
        );
        let t3 = t2 + self.ms(5, 50);
        self.log(
            t3,
            h,
            "postfix/qmgr",
            3,
            format!("{q}: from=<{sender}>, size={size}, nrcpt={nrcpt} (queue active)"),
        );
        let t4 = t3 + self.ms(5, 30);
        let commands = 5 + nrcpt;
        self.log(
            t4,
            h,
            "postfix/smtpd",
            1,
            format!(
                "disconnect from {client} ehlo=1 mail=1 rcpt={nrcpt} data=1 quit=1 commands={commands}"
            ),
        );
        (q, t3)
    }

    /// `h` relays `to` of message `q` to fleet host `next`, which logged it as `nq`.
    fn relay_line(&mut self, h: usize, q: &str, t: i64, to: &str, next: usize, nq: &str) {
        let relay = format!("{}[{}]:25", self.hosts[next].fqdn, self.hosts[next].ip);
        self.log(
            t,
            h,
            "postfix/smtp",
            4,
            format!(
                "{q}: to=<{to}>, relay={relay}, delay=0.4, delays=0.1/0.01/0.1/0.19, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {nq})"
            ),
        );
        self.stats.relay_links += 1;
    }

    fn removed(&mut self, h: usize, q: &str, t: i64) {
        self.log(t, h, "postfix/qmgr", 3, format!("{q}: removed"));
    }

    /// Mail from the Internet: mx → store → mailbox or bounce (→ mx → out).
    fn inbound(&mut self, t: i64) {
        self.stats.inbound += 1;
        let mx = self.pick_of(Role::Mx);
        let store = self.pick_of(Role::Store);
        let (rdomain, rmx, rip) = REMOTE[self.rng.random_range(0..REMOTE.len())];
        let sender_user = USERS[self.rng.random_range(0..USERS.len())];
        let sender = format!("{sender_user}@{rdomain}");
        let domain = FLEET_DOMAINS[store % FLEET_DOMAINS.len()];
        let nrcpt = self.rng.random_range(1..=3usize);
        // Distinct addresses: a message names a recipient once.
        let mut rcpts: Vec<String> = Vec::with_capacity(nrcpt);
        while rcpts.len() < nrcpt {
            let n = self.rng.random_range(0..100_000u32);
            let r = format!("user{n}@{domain}");
            if !rcpts.contains(&r) {
                rcpts.push(r);
            }
        }
        let mid = self.message_id(rdomain);
        let size = self.rng.random_range(2_000..200_000u64);
        let client = format!("{rmx}[{rip}]");
        let (q1, t1) = self.receive(mx, t, &client, None, &mid, &sender, size, nrcpt);
        // mx relays all recipients in one session to the store.
        let mx_client = format!("{}[{}]", self.hosts[mx].fqdn, self.hosts[mx].ip);
        let t_conn = t1 + self.ms(20, 300);
        let (q2, t2) = self.receive(
            store,
            t_conn,
            &mx_client,
            None,
            &mid,
            &sender,
            size + 600,
            nrcpt,
        );
        let t_sent = t2 + self.ms(5, 40);
        for r in &rcpts {
            self.relay_line(mx, &q1, t_sent, r, store, &q2);
        }
        let t_rm = t_sent + self.ms(1, 10);
        self.removed(mx, &q1, t_rm);
        // The store delivers each recipient.
        let mut t_d = t2 + self.ms(10, 200);
        let mut bounced = Vec::new();
        for r in &rcpts {
            t_d += self.ms(5, 100);
            let lmtp = format!("{}[private/dovecot-lmtp]", self.hosts[store].fqdn);
            if self.rng.random_bool(0.04) {
                self.log(
                    t_d,
                    store,
                    "postfix/lmtp",
                    5,
                    format!(
                        "{q2}: to=<{r}>, relay={lmtp}, delay=0.3, delays=0.1/0.01/0.05/0.14, dsn=5.2.2, status=bounced (host {lmtp} said: 552 5.2.2 <{r}> Mailbox is full / Blocks or inodes quota exceeded (in reply to end of DATA command))"
                    ),
                );
                bounced.push(r.clone());
                self.stats.bounced_at_store += 1;
            } else {
                self.log(
                    t_d,
                    store,
                    "postfix/lmtp",
                    5,
                    format!(
                        "{q2}: to=<{r}>, relay={lmtp}, delay=0.3, delays=0.1/0.01/0.05/0.14, dsn=2.0.0, status=sent (250 2.0.0 <{r}> Saved)"
                    ),
                );
                self.stats.delivered += 1;
            }
        }
        if bounced.is_empty() {
            let t_rm = t_d + self.ms(1, 10);
            self.removed(store, &q2, t_rm);
            return;
        }
        // The notification: generated on the store, back through the mx, out.
        let qn = self.qid(store);
        let t_n = t_d + self.ms(5, 50);
        let stamp = self.stamps.datetime(t_n).format("%Y%m%d%H%M%S").to_string();
        let ndr_mid = format!("{stamp}.{qn}@{}", self.hosts[store].fqdn);
        self.log(
            t_n,
            store,
            "postfix/cleanup",
            2,
            format!("{qn}: message-id=<{ndr_mid}>"),
        );
        self.log(
            t_n + 1000,
            store,
            "postfix/bounce",
            6,
            format!("{q2}: sender non-delivery notification: {qn}"),
        );
        let t_nq = t_n + self.ms(5, 30);
        self.log(
            t_nq,
            store,
            "postfix/qmgr",
            3,
            format!(
                "{qn}: from=<>, size={}, nrcpt=1 (queue active)",
                size / 4 + 2000
            ),
        );
        self.removed(store, &q2, t_nq + 1000);
        let store_client = format!("{}[{}]", self.hosts[store].fqdn, self.hosts[store].ip);
        let t_back_conn = t_nq + self.ms(20, 200);
        let (q3, t3) = self.receive(
            mx,
            t_back_conn,
            &store_client,
            None,
            &ndr_mid,
            "",
            size / 4 + 2600,
            1,
        );
        let t_back = t3 + self.ms(5, 40);
        self.relay_line(store, &qn, t_back, &sender, mx, &q3);
        self.removed(store, &qn, t_back + 1000);
        let t_out = t3 + self.ms(100, 900);
        let ext: u64 = self.rng.random();
        self.log(
            t_out,
            mx,
            "postfix/smtp",
            4,
            format!(
                "{q3}: to=<{sender}>, relay={rmx}[{rip}]:25, delay=0.8, delays=0.1/0.01/0.3/0.39, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {:010X})",
                ext & 0xFF_FFFF_FFFF
            ),
        );
        self.removed(mx, &q3, t_out + 1000);
    }

    /// Mail from a user: submit → smarthost → the Internet (sent or bounced).
    fn outbound(&mut self, t: i64) {
        self.stats.outbound += 1;
        let submit = self.pick_of(Role::Submit);
        let smart = self.pick_of(Role::Smarthost);
        let n = self.rng.random_range(0..100_000u32);
        let domain = FLEET_DOMAINS[n as usize % FLEET_DOMAINS.len()];
        let sender = format!("user{n}@{domain}");
        let (rdomain, rmx, rip) = REMOTE[self.rng.random_range(0..REMOTE.len())];
        let user = USERS[self.rng.random_range(0..USERS.len())];
        let to = format!("{user}@{rdomain}");
        let mid = self.message_id(domain);
        let size = self.rng.random_range(1_000..50_000u64);
        let client = format!("client{}.isp.test[203.0.113.{}]", n % 250, n % 250);
        let (q1, t1) = self.receive(submit, t, &client, Some(&sender), &mid, &sender, size, 1);
        let sub_client = format!("{}[{}]", self.hosts[submit].fqdn, self.hosts[submit].ip);
        let t_conn = t1 + self.ms(20, 200);
        let (q2, t2) = self.receive(
            smart,
            t_conn,
            &sub_client,
            None,
            &mid,
            &sender,
            size + 400,
            1,
        );
        let t_sent = t2 + self.ms(5, 40);
        self.relay_line(submit, &q1, t_sent, &to, smart, &q2);
        self.removed(submit, &q1, t_sent + 1000);
        let t_out = t2 + self.ms(100, 1500);
        if self.rng.random_bool(0.03) {
            self.log(
                t_out,
                smart,
                "postfix/smtp",
                4,
                format!(
                    "{q2}: to=<{to}>, relay={rmx}[{rip}]:25, delay=1.1, delays=0.1/0.01/0.4/0.59, dsn=5.1.1, status=bounced (host {rmx}[{rip}] said: 550 5.1.1 <{to}>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))"
                ),
            );
            self.stats.bounced_at_smarthost += 1;
        } else {
            let ext: u64 = self.rng.random();
            self.log(
                t_out,
                smart,
                "postfix/smtp",
                4,
                format!(
                    "{q2}: to=<{to}>, relay={rmx}[{rip}]:25, delay=1.1, delays=0.1/0.01/0.4/0.59, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {:010X})",
                    ext & 0xFF_FFFF_FFFF
                ),
            );
        }
        self.removed(smart, &q2, t_out + 1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: &FleetConfig) -> (Vec<String>, FleetStats) {
        let n = fleet_hosts(cfg.hosts).len();
        let mut bufs: Vec<Box<dyn Write>> = (0..n)
            .map(|_| Box::new(Vec::<u8>::new()) as Box<dyn Write>)
            .collect();
        let stats = generate_fleet(cfg, &mut bufs).unwrap();
        drop(bufs);
        // Re-run into shared buffers to read the output back.
        let shared: Vec<std::rc::Rc<std::cell::RefCell<Vec<u8>>>> = (0..n)
            .map(|_| std::rc::Rc::new(std::cell::RefCell::new(Vec::new())))
            .collect();
        struct W(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.borrow_mut().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut outs: Vec<Box<dyn Write>> = shared
            .iter()
            .map(|s| Box::new(W(s.clone())) as Box<dyn Write>)
            .collect();
        let again = generate_fleet(cfg, &mut outs).unwrap();
        assert_eq!(stats, again, "deterministic for a seed");
        drop(outs);
        let texts = shared
            .iter()
            .map(|s| String::from_utf8(s.borrow().clone()).unwrap())
            .collect();
        (texts, stats)
    }

    #[test]
    fn roles_of_a_fleet_of_twenty() {
        let hosts = fleet_hosts(20);
        let count = |r: Role| hosts.iter().filter(|h| h.role == r).count();
        assert_eq!(hosts.len(), 20);
        assert_eq!(count(Role::Mx), 5);
        assert_eq!(count(Role::Store), 10);
        assert_eq!(count(Role::Submit), 4);
        assert_eq!(count(Role::Smarthost), 1);
        assert_eq!(fleet_hosts(1).len(), MIN_FLEET_HOSTS);
    }

    #[test]
    fn every_queued_as_is_a_message_of_the_named_host() {
        let cfg = FleetConfig {
            hosts: 8,
            messages: 2_000,
            ..FleetConfig::default()
        };
        let (texts, stats) = run(&cfg);
        let hosts = fleet_hosts(8);
        assert_eq!(
            stats.lines,
            texts.iter().map(|t| t.lines().count() as u64).sum::<u64>()
        );
        assert!(stats.bounced_at_store > 0 && stats.bounced_at_smarthost > 0);
        // Queue ids each host created (client= lines), and the hand-offs.
        let mut created = std::collections::HashSet::new();
        for (h, text) in texts.iter().enumerate() {
            let mut last = String::new();
            for line in text.lines() {
                let stamp = line.split(' ').next().unwrap().to_owned();
                assert!(stamp >= last, "time order on {}", hosts[h].name);
                last = stamp;
                if let Some((_, rest)) = line.split_once("]: ")
                    && let Some((q, _)) = rest.split_once(": client=")
                {
                    assert!(created.insert((h, q.to_owned())), "{q} created twice");
                }
            }
        }
        let mut links = 0;
        for text in &texts {
            for line in text.lines() {
                let Some(i) = line.find("relay=") else {
                    continue;
                };
                let relay = &line[i + 6..];
                let Some(target) = hosts.iter().position(|h| relay.starts_with(&h.fqdn)) else {
                    continue;
                };
                let Some(j) = line.find("queued as ") else {
                    continue;
                };
                let q = line[j + 10..].trim_end_matches(')');
                assert!(created.contains(&(target, q.to_owned())), "{line}");
                links += 1;
            }
        }
        assert_eq!(links, stats.relay_links);
    }
}
