//! Cross-host links (issue 16, migration V12): a recipient relayed to another host
//! whose logs are in the same database is followed there, and its fate at the end of
//! the chain is in `delivery_status`, `message_status` and `pftrack status`.
//!
//! The two-tier fixture (`fixtures/fleet/`): mx1 receives a mail for bob and carol,
//! passes it through its content filter, relays it to store1, which delivers bob's copy
//! and bounces carol's (mailbox full); store1's non-delivery notification travels back
//! through mx1 and out to the sender. Loaded as one file, as two files in either order,
//! and with store1's file loaded after a later week of other mail, the links and fates
//! must be the same rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{TestDb, assert_rows, backfill, expected_lines, fixture, pftrack, run_ok};

/// Every recipient of the fixture hosts with its fate at the end of its path.
const FINAL_ROWS: &str = "SELECT host, queue_id, recipient, status, final_status, final_host, \
    final_queue_id, final_arrived_at FROM delivery_status \
    WHERE host IN ('mx1', 'store1', 'edge', 'vault', 'alpha', 'beta') \
      AND arrived_at >= '2025-03-14' AND arrived_at < '2025-03-15' \
    ORDER BY arrived_at, host, queue_id, recipient";

/// Every hop of every such recipient's path.
const PATH_ROWS: &str = "SELECT t.host, t.queue_id, t.recipient, p.hop, p.link, p.host, \
    p.queue_id, p.recipient, p.status, p.dsn FROM delivery_to t \
    CROSS JOIN LATERAL delivery_path(t.host, t.queue_id, t.arrived_at, t.recipient, \
    t.orig_recipient) p \
    WHERE t.host IN ('mx1', 'store1', 'edge', 'vault', 'alpha', 'beta') \
      AND t.arrived_at >= '2025-03-14' AND t.arrived_at < '2025-03-15' \
    ORDER BY t.arrived_at, t.host, t.queue_id, t.recipient, p.hop";

/// The messages' outcomes and fates.
const MESSAGE_ROWS: &str = "SELECT host, queue_id, outcome, final_status, final_host, \
    final_queue_id FROM message_status \
    WHERE host IN ('mx1', 'store1', 'edge', 'vault', 'alpha', 'beta') \
      AND arrived_at >= '2025-03-14' AND arrived_at < '2025-03-15' \
    ORDER BY arrived_at, host, queue_id";

/// `delivery_paths()` (V19: every recipient of many messages at once, what `pftrack
/// status` reads) gives exactly the rows `delivery_path()` gives recipient by recipient,
/// for every recipient in the database; returns how many path rows there are. Since
/// V20 `delivery_path()` is `delivery_paths()` started from one recipient, so this
/// checks that start: each recipient's path alone is its part of the messages' paths.
fn assert_paths_agree(db: &TestDb) -> usize {
    let one_by_one = "SELECT t.host, t.queue_id, t.arrived_at, t.recipient, \
        NULLIF(t.orig_recipient, ''), p.* FROM delivery_to t \
        CROSS JOIN LATERAL delivery_path(t.host, t.queue_id, t.arrived_at, t.recipient, \
        t.orig_recipient) p";
    let all_at_once = "SELECT p.* FROM (SELECT array_agg(host) h, array_agg(queue_id) q, \
        array_agg(arrived_at) a FROM delivery_from) m CROSS JOIN LATERAL \
        delivery_paths(m.h, m.q, m.a) p";
    let differing = db.query(&format!(
        "SELECT 'only delivery_path', * FROM ({one_by_one} EXCEPT ALL {all_at_once}) x \
         UNION ALL \
         SELECT 'only delivery_paths', * FROM ({all_at_once} EXCEPT ALL {one_by_one}) y"
    ));
    assert_eq!(
        differing.trim(),
        "",
        "delivery_paths() and delivery_path() differ"
    );
    let rows: usize = db
        .query(&format!("SELECT count(*) FROM ({all_at_once}) x"))
        .trim()
        .parse()
        .expect("a count");
    rows
}

fn fleet(name: &str) -> std::path::PathBuf {
    fixture(&format!("fleet/{name}"))
}

fn assert_two_tier(db: &TestDb, how: &str) {
    let expected = expected_lines(&fleet("fleet.expected"));
    let (finals, rest): (Vec<String>, Vec<String>) =
        expected.into_iter().partition(|l| l.starts_with("final|"));
    let (paths, messages): (Vec<String>, Vec<String>) =
        rest.into_iter().partition(|l| l.starts_with("path|"));
    let strip = |v: Vec<String>, p: &str| -> Vec<String> {
        v.iter()
            .map(|l| l.strip_prefix(p).unwrap_or(l).to_owned())
            .collect()
    };
    assert_rows(
        &format!("{how}: final fates"),
        &db.query(FINAL_ROWS),
        &strip(finals, "final|"),
    );
    assert_rows(
        &format!("{how}: paths"),
        &db.query(PATH_ROWS),
        &strip(paths, "path|"),
    );
    assert_rows(
        &format!("{how}: messages"),
        &db.query(MESSAGE_ROWS),
        &strip(messages, "message|"),
    );
    assert!(assert_paths_agree(db) > 0, "{how}: no paths");
}

#[test]
fn two_tier_as_one_file() {
    let db = TestDb::new("fleet_one");
    backfill(&db, &fleet("fleet.log"), &[]);
    assert_two_tier(&db, "one file");
}

#[test]
fn two_tier_as_two_files_mx_first() {
    let db = TestDb::new("fleet_mx_first");
    backfill(&db, &fleet("mx1.log"), &[]);
    // Before store1's logs: mx1's recipients end at mx1 (sent onwards, nothing known).
    assert_eq!(
        db.query(
            "SELECT DISTINCT final_host FROM delivery_status WHERE host = 'mx1' \
             AND recipient = 'carol@example.com'"
        )
        .trim(),
        "mx1"
    );
    backfill(&db, &fleet("store1.log"), &[]);
    assert_two_tier(&db, "mx1 then store1");
}

#[test]
fn two_tier_as_two_files_store_first() {
    let db = TestDb::new("fleet_store_first");
    backfill(&db, &fleet("store1.log"), &[]);
    backfill(&db, &fleet("mx1.log"), &[]);
    assert_two_tier(&db, "store1 then mx1");
}

/// store1's logs arrive after a week of other mail on mx1 and mx2 has been loaded (a
/// separate backfill run, as a late log shipment would be): the link still forms.
#[test]
fn two_tier_with_the_second_host_a_week_later() {
    let db = TestDb::new("fleet_week_later");
    backfill(&db, &fleet("mx1.log"), &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let other = later_mail(dir.path());
    backfill(&db, &other, &[]);
    let later: i64 = db
        .query("SELECT count(*) FROM delivery_from WHERE arrived_at >= '2025-03-20'")
        .trim()
        .parse()
        .expect("a count");
    assert!(later > 1000, "the later week was loaded: {later} messages");
    backfill(&db, &fleet("store1.log"), &[]);
    assert_two_tier(&db, "store1 a week later");
}

/// A week of generated mail on mx1 and mx2, from 2025-03-20 (after the fixture).
fn later_mail(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("later.log");
    let file = std::fs::File::create(&path).expect("create the log");
    let mut file = std::io::BufWriter::new(file);
    let config = pftrack_loggen::GenConfig {
        seed: 16,
        lines: 30_000,
        format: pftrack_loggen::StampFormat::Rfc3339,
        start: chrono::NaiveDate::from_ymd_opt(2025, 3, 20)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid date"),
        hosts: vec!["mx1".into(), "mx2".into()],
        messages_per_second: 0.005,
        queue_id_space: 4096,
        ..pftrack_loggen::GenConfig::default()
    };
    pftrack_loggen::generate(&config, &mut file).expect("the generator writes");
    file.flush().expect("the log is written");
    path
}

#[test]
fn status_shows_the_path_and_where_the_recipient_continued() {
    let db = TestDb::new("fleet_status");
    backfill(&db, &fleet("fleet.log"), &[]);

    let out = run_ok(&[
        "status",
        "--database-url",
        &db.url,
        "--json",
        "4Lq0c62Hm2z9fLW",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let carol = v[0]["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .find(|r| r["recipient"] == "carol@example.com")
        .expect("carol");
    assert_eq!(carol["continued_as"]["host"], "store1");
    assert_eq!(carol["continued_as"]["queue_id"], "7C2D9A41F3");
    assert_eq!(
        carol["continued_as"]["arrived_at"],
        "2025-03-14T09:00:03.100Z"
    );
    assert_eq!(carol["continued_as"]["kind"], "relay");
    assert_eq!(carol["final_status"], "bounced");
    assert_eq!(carol["final_host"], "store1");
    assert_eq!(carol["final_queue_id"], "7C2D9A41F3");
    assert_eq!(
        carol["path"][0]["recipient"],
        "carol@store1.example.internal"
    );
    assert_eq!(carol["path"][0]["dsn"], "5.2.2");

    // The message as received: MX → filter → mailbox host, each hop with its status.
    let out = run_ok(&["status", "--database-url", &db.url, "4Lq0c60QJdz9fLV"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "path: mx1 4Lq0c60QJdz9fLV sent → reinjection mx1 4Lq0c62Hm2z9fLW sent → relay \
             store1 7C2D9A41F3 bounced 5.2.2 (to carol@store1.example.internal)"
        ),
        "{text}"
    );
    assert!(
        text.contains("at store1 7C2D9A41F3: host store1.example.internal[private/dovecot-lmtp] said: 552 5.2.2"),
        "{text}"
    );
    assert!(
        text.contains(
            "path: mx1 4Lq0c60QJdz9fLV sent → reinjection mx1 4Lq0c62Hm2z9fLW sent → relay \
             store1 7C2D9A41F3 sent (to bob@store1.example.internal)"
        ),
        "{text}"
    );

    // The notification: store1 → mx1 → the sender's server (not in the database).
    let out = run_ok(&["status", "--database-url", &db.url, "--json", "8E1F2A3B4C"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let alice = &v[0]["recipients"][0];
    assert_eq!(alice["continued_as"]["host"], "mx1");
    assert_eq!(alice["continued_as"]["queue_id"], "4Lq0c64Wn7z9fLX");
    assert_eq!(alice["final_status"], "sent");
    assert_eq!(alice["final_host"], "mx1");
    assert_eq!(alice["path"].as_array().map(Vec::len), Some(1));

    // A recipient with no path has none in JSON and is its own end.
    let out = run_ok(&["status", "--database-url", &db.url, "--json", "7C2D9A41F3"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for r in v[0]["recipients"].as_array().expect("recipients") {
        assert!(r.get("path").is_none(), "{r}");
        assert!(r["continued_as"].is_null(), "{r}");
        assert_eq!(r["final_host"], "store1");
        assert_eq!(r["final_status"], r["status"]);
    }
}

/// Hosts known by another name: the relay names vault by address only (an alias in
/// the configuration) or by its myhostname (learned from the Message-IDs Postfix
/// generated on vault); vault's smtpd saw edge as unknown[…].
#[test]
fn host_aliases_from_the_configuration_and_names_learned_from_the_logs() {
    let db = TestDb::new("fleet_alias");
    backfill(&db, &fleet("alias.log"), &[]);
    let fate = |rcpt: &str| {
        db.query(&format!(
            "SELECT final_status || ' ' || final_host || ' ' || final_queue_id \
             FROM delivery_status WHERE host = 'edge' AND recipient = '{rcpt}'"
        ))
        .trim()
        .to_owned()
    };
    // Without aliases: the by-address relay stays unlinked; the myhostname one links.
    assert_eq!(fate("dave@example.net"), "sent edge 5A1B2C3D4E");
    assert_eq!(fate("erin@example.net"), "bounced vault 6B1C2D3E50");
    assert_eq!(
        db.query("SELECT host, identity, source FROM host_identity ORDER BY 1, 2")
            .trim(),
        "vault|mailstore.example.net|myhostname"
    );

    // The alias map, as `pftrack migrate` (and every load or run) writes it.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("pftrack.yaml");
    std::fs::write(
        &config,
        "fleet:\n  host_aliases:\n    vault: [\"10.0.0.9\", Vault-Lmtp.Example.Internal]\n",
    )
    .expect("write the configuration");
    let config = config.to_str().expect("utf-8 path");
    run_ok(&["--config", config, "migrate", "--database-url", &db.url]);
    assert_eq!(
        db.query("SELECT alias, host FROM host_alias ORDER BY alias")
            .trim(),
        "10.0.0.9|vault\nvault-lmtp.example.internal|vault"
    );
    assert_eq!(fate("dave@example.net"), "sent vault 6B1C2D3E4F");
    assert_eq!(fate("erin@example.net"), "bounced vault 6B1C2D3E50");
    // The alias and the learned name are followed the same way all at once.
    assert_paths_agree(&db);

    // Without the map again, the alias is gone and so is the link it made.
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "fleet: {}\n").expect("write the configuration");
    run_ok(&[
        "--config",
        empty.to_str().expect("utf-8 path"),
        "migrate",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(db.query("SELECT count(*) FROM host_alias").trim(), "0");
    assert_eq!(fate("dave@example.net"), "sent edge 5A1B2C3D4E");

    // A map that names one alias for two hosts is refused before anything is written.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "fleet:\n  host_aliases:\n    vault: [10.0.0.9]\n    edge: [10.0.0.9]\n",
    )
    .expect("write the configuration");
    let out = pftrack()
        .args(["--config", bad.to_str().expect("utf-8 path")])
        .args(["migrate", "--database-url", &db.url])
        .output()
        .expect("pftrack runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"10.0.0.9\" is given for both"), "{err}");
}

/// Two hosts that relay a message to each other with queue ids that point back: the
/// path stops at the message it would visit twice.
#[test]
fn a_loop_between_two_hosts_ends() {
    let db = TestDb::new("fleet_loop");
    backfill(&db, &fleet("loop.log"), &[]);
    assert_eq!(
        db.query("SELECT host, final_host, final_queue_id FROM delivery_status ORDER BY host")
            .trim(),
        "alpha|beta|2B3C4D5E6F\nbeta|alpha|1A2B3C4D5E"
    );
    assert_eq!(
        db.query(
            "SELECT max(p.hop) FROM delivery_to t CROSS JOIN LATERAL delivery_path(t.host, \
             t.queue_id, t.arrived_at, t.recipient, t.orig_recipient) p"
        )
        .trim(),
        "1"
    );
    assert_paths_agree(&db);
}

/// V16's shortcut: `fleet_host_named(host, name)` is true exactly when
/// `fleet_host_is(host, name, NULL)` is true by name alone (no alias, no learned
/// myhostname), so `delivery_path()` finds the same hops with it first.
#[test]
fn the_name_shortcut_agrees_with_fleet_host_is() {
    let db = TestDb::new("fleet_named");
    run_ok(&["migrate", "--database-url", &db.url]);
    let disagreements = db.query(
        "SELECT h, n, fleet_host_named(h, n), fleet_host_is(h, n, NULL) \
         FROM unnest(ARRAY['store1', 'store1', 'store1', 'Store1', 'store1', 'store1', \
                           'store1.example', 'store1.example', 'store1', 'store1', \
                           'mx1', ''], \
                     ARRAY['store1', 'STORE1.example.internal', 'store10.example', \
                           'store1', 'store', NULL, 'store1.example', 'store1', \
                           '[10.0.0.5]', 'unknown', 'mx1.fleet.example', '']) AS x(h, n) \
         WHERE fleet_host_named(h, n) IS DISTINCT FROM fleet_host_is(h, n, NULL)",
    );
    assert_eq!(disagreements.trim(), "", "host, name, named, is");
    assert_eq!(
        db.query(
            "SELECT count(*) FILTER (WHERE fleet_host_named(h, n)) \
             FROM unnest(ARRAY['store1', 'mx1', 'store1.example'], \
                         ARRAY['STORE1.example.internal', 'mx1', 'store1']) AS x(h, n)"
        )
        .trim(),
        "2"
    );
}

/// A generated fleet (crates/loggen's fleet mode: mx → store with bounces travelling
/// back, submit → smarthost), each host's log loaded by its own `pftrack backfill`,
/// all at once: every hand-off the generator made is found as a relay link, and the
/// fates at the end of the chains are the generator's.
#[test]
fn a_generated_fleet_loaded_concurrently_links_every_hand_off() {
    use std::io::Write;
    let db = TestDb::new("fleet_generated");
    run_ok(&["migrate", "--database-url", &db.url]);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = pftrack_loggen::FleetConfig {
        seed: 16,
        hosts: 8,
        messages: 1_500,
        ..pftrack_loggen::FleetConfig::default()
    };
    let hosts = pftrack_loggen::fleet_hosts(config.hosts);
    let paths: Vec<std::path::PathBuf> = hosts
        .iter()
        .map(|h| dir.path().join(format!("{}.log", h.name)))
        .collect();
    let mut outs: Vec<Box<dyn Write>> = paths
        .iter()
        .map(|p| {
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(p).expect("create a host log"),
            )) as Box<dyn Write>
        })
        .collect();
    let stats = pftrack_loggen::generate_fleet(&config, &mut outs).expect("the generator writes");
    for out in &mut outs {
        out.flush().expect("the log is written");
    }
    drop(outs);
    let children: Vec<std::process::Child> = paths
        .iter()
        .map(|p| {
            pftrack()
                .args(["backfill", "--database-url", &db.url])
                .arg(p)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("pftrack runs")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("pftrack ends").success());
    }
    assert_eq!(
        db.query(
            "SELECT count(*) FROM delivery_to t CROSS JOIN LATERAL delivery_path(t.host, \
             t.queue_id, t.arrived_at, t.recipient, t.orig_recipient) p \
             WHERE p.hop = 1 AND p.link = 'relay'"
        )
        .trim(),
        stats.relay_links.to_string()
    );
    // Inbound recipients as the mx hosts received them, by their fate at the store.
    assert_eq!(
        db.query(
            "SELECT final_status || ' ' || count(*) FROM delivery_status \
             WHERE host LIKE 'mx%' AND recipient LIKE '%fleet.example' \
             GROUP BY final_status ORDER BY 1"
        )
        .trim(),
        format!(
            "bounced {}\nsent {}",
            stats.bounced_at_store, stats.delivered
        )
    );
    // The paths `pftrack status` reads (delivery_paths) are delivery_path()'s, hop for
    // hop, for every recipient of the fleet.
    assert!(assert_paths_agree(&db) > stats.relay_links as usize);
    // Outbound mail as the submission hosts received it, by its fate at the smarthost.
    assert_eq!(
        db.query(
            "SELECT count(*) FROM delivery_status WHERE host LIKE 'submit%' \
             AND final_host = 'smarthost1' AND final_status = 'bounced'"
        )
        .trim(),
        stats.bounced_at_smarthost.to_string()
    );
}

/// The queries of docs/queries.md, "Across hosts", on the two-tier fixture moved to
/// the last minutes (they ask about "the last two days").
#[test]
fn the_across_hosts_queries_in_the_docs_find_rows() {
    let queries = common::doc_queries("postgresql", Some("## Across hosts"));
    assert_eq!(queries.len(), 4);
    let db = TestDb::new("fleet_docs");
    backfill(&db, &fleet("fleet.log"), &[]);
    let offset = db.query(
        "SELECT now() - interval '1 minute' - greatest( \
             (SELECT max(last_seen_at) FROM delivery_from), \
             (SELECT max(attempt_at) FROM delivery_attempt))",
    );
    let statements = db.query(&format!(
        "SELECT string_agg(format('UPDATE %I SET %s', table_name, sets), '; ') FROM ( \
             SELECT table_name, \
                    string_agg(format('%1$I = %1$I + interval %2$L', column_name, '{}'), ', ') \
                        AS sets \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type = 'timestamp with time zone' \
               AND table_name IN ('delivery_from', 'delivery_to', 'delivery_attempt') \
             GROUP BY table_name) t",
        offset.trim()
    ));
    db.query(&format!("BEGIN; {}; COMMIT", statements.trim()));
    let out: Vec<String> = queries.iter().map(|q| db.query(q)).collect();
    // carol@example.com: accepted by mx1 twice (before and after the filter), bounced
    // at store1.
    let carol: Vec<&str> = out[0].lines().collect();
    assert_eq!(carol.len(), 2, "{}", out[0]);
    assert!(
        carol
            .iter()
            .all(|l| l.ends_with("|sent|bounced|store1|7C2D9A41F3")),
        "{}",
        out[0]
    );
    let hops: Vec<&str> = out[1].lines().collect();
    assert_eq!(hops.len(), 3, "{}", out[1]);
    assert!(
        hops[2].starts_with("2|relay|store1|7C2D9A41F3|"),
        "{}",
        out[1]
    );
    assert_eq!(out[2].lines().count(), 2, "{}", out[2]);
    assert!(out[2].contains("Mailbox is full"), "{}", out[2]);
    assert_eq!(out[3].trim(), "store1|store1.example.internal|myhostname");
}

/// A role that may read the views and nothing else (no table, no host_alias) sees the
/// fates at the end of the paths: the functions the views call read with their
/// owner's rights (V13).
#[test]
fn a_role_reading_only_the_views_sees_the_fates() {
    let db = TestDb::new("fleet_reader");
    backfill(&db, &fleet("fleet.log"), &[]);
    let role = format!("{}_only_views", db.name);
    db.query(&format!(
        "CREATE ROLE {role} NOLOGIN; GRANT SELECT ON delivery_status, message_status TO {role}"
    ));
    let fates = db.query(&format!(
        "SET ROLE {role}; SELECT final_host || ' ' || final_status FROM delivery_status \
         WHERE recipient = 'carol@example.com' \
         UNION ALL SELECT final_status FROM message_status WHERE queue_id = '4Lq0c60QJdz9fLV'"
    ));
    db.query(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
    assert_eq!(
        fates.trim().trim_start_matches("SET").trim(),
        "store1 bounced\nstore1 bounced\npartial"
    );
}
