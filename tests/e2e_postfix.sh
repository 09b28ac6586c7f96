#!/usr/bin/env bash
# End-to-end test with a real Postfix: mail with known fates goes through Debian's
# postfix, which logs into the journal; `pftrack run` follows the journal into a fresh
# database; the rows of delivery_status and noqueue are checked against what was sent.
#
# Run as root on Debian 12 (systemd need not be PID 1):
#     tests/e2e_postfix.sh            # PFTRACK_BIN=path/to/pftrack to skip the build
# Prints "e2e: N passed, M failed" and exits 0 only when nothing failed (2 when it
# cannot run: not root, no Debian tools).
#
# What it does, and undoes at exit:
# - installs the `postfix` package when missing (debconf: "Local only", mailname
#   e2e.test; a temporary /usr/sbin/policy-rc.d exiting 101 keeps the package from
#   starting it); the package stays installed, like any test dependency;
# - starts the standalone journald (scripts/journald-harness) when no journald runs;
# - saves /etc/postfix/main.cf and master.cf and restores them; the test's Postfix
#   uses its own queue, data and mail spool directories under a temporary directory,
#   never the system's queue, and logs as `postfix-e2e/...` (syslog_name), so
#   pftrack follows only these entries;
# - runs Postfix in a network namespace that has only a loopback interface, so no
#   packet can leave the machine; /etc/netns/NAME/resolv.conf points DNS at
#   127.0.0.1, where nothing answers, so remote domains defer at once;
# - creates a database on the local PostgreSQL and drops it (PFTRACK_E2E_KEEP_DB=1
#   keeps it).
#
# Mail sent (over SMTP on 127.0.0.1 inside the namespace, and with sendmail):
#   1. SMTP, to an existing local user (nobody)            -> sent, relay=local
#   2. SMTP, to an unknown local user                      -> NOQUEUE reject 550 5.1.1
#   3. sendmail (pickup), to an unknown local user         -> bounced 5.1.1, and its
#      non-delivery notification to the sender (nobody)    -> sent, parent linked
#   4. SMTP, to a domain routed to 127.0.0.1:2 (refused)   -> deferred 4.4.1
#   5. SMTP from 127.0.0.2 (not in mynetworks) to a remote
#      domain                                               -> NOQUEUE reject 554 5.7.1
#   6. SMTP, to a remote domain (DNS does not answer)      -> deferred 4.4.3
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NS=pftrack-e2e
SYSLOG_NAME=postfix-e2e
MAILNAME=e2e.test
# How long to wait for Postfix and pftrack to get every expected row, in seconds.
WAIT_SECS=90
PYTHON=/usr/bin/python3

say() { printf 'e2e: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "must run as root (it installs and runs Postfix)"
    exit 2
fi
command -v apt-get >/dev/null || { say "not a Debian machine (no apt-get)"; exit 2; }
# PostgreSQL and a role that may create databases: scripts/test has set them up and
# exported PFTRACK_TEST_ADMIN_URL; run alone, do the same set-up.
if [ -z "${PFTRACK_TEST_ADMIN_URL:-}" ]; then
    . "$REPO/scripts/setup"
    pftrack_setup
fi

WORK=$(mktemp -d /var/tmp/pftrack-e2e.XXXXXX)
chmod 755 "$WORK"
DB=pftrack_e2e_$$
ADMIN_URL=${PFTRACK_TEST_ADMIN_URL:-"host=/var/run/postgresql user=$(id -un) dbname=postgres"}
DB_URL=$(printf '%s\n' "$ADMIN_URL" | tr ' ' '\n' | grep -v '^dbname=' | tr '\n' ' ')"dbname=$DB"
PFTRACK_PID=
POSTFIX_STARTED=0
CONF_SAVED=0
NETNS_MADE=0

cleanup() {
    set +e
    if [ -n "$PFTRACK_PID" ] && kill -0 "$PFTRACK_PID" 2>/dev/null; then
        kill -TERM "$PFTRACK_PID"
        wait "$PFTRACK_PID" 2>/dev/null
    fi
    if [ "$POSTFIX_STARTED" = 1 ]; then
        ip netns exec "$NS" postfix stop >/dev/null 2>&1
        # master exits within a second or two; its children follow.
        for _ in $(seq 50); do
            postfix status >/dev/null 2>&1 || break
            sleep 0.1
        done
    fi
    if [ "$CONF_SAVED" = 1 ]; then
        cp -p "$WORK/main.cf.saved" /etc/postfix/main.cf
        cp -p "$WORK/master.cf.saved" /etc/postfix/master.cf
    fi
    if [ "$NETNS_MADE" = 1 ]; then
        ip netns delete "$NS"
        rm -rf "/etc/netns/$NS"
    fi
    if [ "${PFTRACK_E2E_KEEP_DB:-0}" = 1 ]; then
        say "keeping database $DB"
    else
        psql "$ADMIN_URL" -X -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- packages ------------------------------------------------------------------
install_packages() {
    local need=()
    [ -x /usr/sbin/postfix ] || need+=(postfix)
    [ -x "$PYTHON" ] || need+=(python3)
    command -v ip >/dev/null || need+=(iproute2)
    ((${#need[@]})) || return 0
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    debconf-set-selections <<EOF
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string $MAILNAME
EOF
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        made_policy=1
    fi
    local rc=0
    apt-get update -qq >&2 && apt-get install -y -qq "${need[@]}" >&2 || rc=$?
    [ "$made_policy" = 1 ] && rm -f "$policy"
    if [ $rc -ne 0 ]; then
        say "apt-get install ${need[*]} failed"
        exit 2
    fi
}
install_packages

if postfix status >/dev/null 2>&1; then
    say "a Postfix is running on this machine already; not touching it"
    exit 2
fi

# --- journal -------------------------------------------------------------------
sh "$REPO/scripts/journald-harness" start || {
    say "no journald"
    exit 2
}

# --- pftrack -------------------------------------------------------------------
if [ -z "${PFTRACK_BIN:-}" ]; then
    (cd "$REPO" && cargo build -q --locked -p pftrack)
    PFTRACK_BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/pftrack"
fi
[ -x "$PFTRACK_BIN" ] || { say "no pftrack binary at $PFTRACK_BIN"; exit 2; }

# --- network namespace -----------------------------------------------------------
if grep -qw "$NS" <<<"$(ip netns list)"; then
    ip netns delete "$NS"
fi
ip netns add "$NS"
NETNS_MADE=1
ip -n "$NS" link set lo up
mkdir -p "/etc/netns/$NS"
echo "nameserver 127.0.0.1" >"/etc/netns/$NS/resolv.conf"
# Only lo, and it is up.
if [ "$(ip -n "$NS" -o link show | grep -vc ': lo:')" != 0 ]; then
    say "the namespace has other interfaces than lo"
    exit 1
fi

# --- Postfix ---------------------------------------------------------------------
cp -p /etc/postfix/main.cf "$WORK/main.cf.saved"
cp -p /etc/postfix/master.cf "$WORK/master.cf.saved"
CONF_SAVED=1
mkdir -p "$WORK/spool" "$WORK/data" "$WORK/mail"
chmod 1777 "$WORK/mail"
chown postfix "$WORK/data"
cat >"$WORK/transport" <<EOF
refused.test smtp:[127.0.0.1]:2
EOF
postmap "$WORK/transport"
postconf -e \
    "queue_directory = $WORK/spool" \
    "data_directory = $WORK/data" \
    "mail_spool_directory = $WORK/mail" \
    "syslog_name = $SYSLOG_NAME" \
    "maillog_file =" \
    "myhostname = mx.$MAILNAME" \
    "mydomain = $MAILNAME" \
    "myorigin = $MAILNAME" \
    "mydestination = $MAILNAME, localhost" \
    "mynetworks = 127.0.0.1/32" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "default_transport = smtp" \
    "relay_transport = smtp" \
    "transport_maps = hash:$WORK/transport" \
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
    "local_recipient_maps = proxy:unix:passwd.byname \$alias_maps" \
    "alias_maps =" \
    "alias_database =" \
    "smtp_connect_timeout = 5s" \
    "queue_run_delay = 300s" \
    "compatibility_level = 3.6"
# No chroot: the chroot would need its own copies of /etc files and /dev/log.
postconf -F '*/*/chroot = n'
ip netns exec "$NS" postfix check >&2
ip netns exec "$NS" postfix start >&2
POSTFIX_STARTED=1

# --- the database and the daemon ----------------------------------------------------
psql "$ADMIN_URL" -X -q -c "CREATE DATABASE $DB" >/dev/null
cat >"$WORK/pftrack.yaml" <<EOF
journal:
  identifiers: ["$SYSLOG_NAME/"]
  since: "$(date -u -d '-2 seconds' +%Y-%m-%dT%H:%M:%SZ)"
EOF
NO_COLOR=1 RUST_LOG=info "$PFTRACK_BIN" run --config "$WORK/pftrack.yaml" \
    --database-url "$DB_URL" >"$WORK/pftrack.out" 2>"$WORK/pftrack.err" &
PFTRACK_PID=$!

# --- mail --------------------------------------------------------------------------
# Wait for smtpd to listen, then send. The client runs in the namespace.
for _ in $(seq 100); do
    if ip netns exec "$NS" "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', 25), 1).close()" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
ip netns exec "$NS" "$PYTHON" - "$MAILNAME" >"$WORK/sent.txt" <<'PY'
import smtplib, sys
domain = sys.argv[1]

def message(mid, rcpt):
    return (f"From: <nobody@{domain}>\r\nTo: <{rcpt}>\r\nSubject: pftrack e2e {mid}\r\n"
            f"Message-ID: <{mid}@{domain}>\r\n\r\nTest mail {mid}.\r\n")

def send(mid, rcpt, source="127.0.0.1"):
    s = smtplib.SMTP("127.0.0.1", 25, source_address=(source, 0), timeout=30)
    try:
        s.ehlo(f"client.{domain}")
        try:
            s.sendmail(f"nobody@{domain}", [rcpt], message(mid, rcpt))
            print(f"{mid} accepted")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients[rcpt]
            print(f"{mid} refused {code} {text.decode(errors='replace')}")
    finally:
        s.quit()

send("e2e-local", f"nobody@{domain}")
send("e2e-unknown", f"nosuchuser@{domain}")
send("e2e-refused", "user@refused.test")
send("e2e-relay", "user@remote.example", source="127.0.0.2")
send("e2e-nodns", "user@nodns.example")
PY
printf 'From: <nobody@%s>\nTo: <nosuchuser2@%s>\nSubject: pftrack e2e pickup\nMessage-ID: <e2e-pickup@%s>\n\nBounce me.\n' \
    "$MAILNAME" "$MAILNAME" "$MAILNAME" |
    ip netns exec "$NS" sendmail -f "nobody@$MAILNAME" "nosuchuser2@$MAILNAME"
say "sent: $(tr '\n' ';' <"$WORK/sent.txt")"

# --- checks --------------------------------------------------------------------------
q() { psql "$DB_URL" -X -At -F '|' -c "$1" 2>/dev/null || true; }

# Each check: a name, a query, and the exact expected output.
CHECK_NAMES=()
CHECK_SQL=()
CHECK_WANT=()
check() {
    CHECK_NAMES+=("$1")
    CHECK_SQL+=("$2")
    CHECK_WANT+=("$3")
}
D=$MAILNAME
check "local delivery: sent by local" \
    "SELECT sender, recipient, status, dsn, relay FROM delivery_status WHERE message_id = 'e2e-local@$D'" \
    "nobody@$D|nobody@$D|sent|2.0.0|local"
check "local delivery: one attempt, arrived by smtpd from 127.0.0.1" \
    "SELECT attempts, origin, client_addr FROM delivery_status WHERE message_id = 'e2e-local@$D'" \
    "1|smtpd|127.0.0.1"
check "unknown local user over SMTP: NOQUEUE reject" \
    "SELECT daemon, action, stage, client_addr, code, dsn, sender, recipient FROM noqueue WHERE recipient = 'nosuchuser@$D'" \
    "smtpd|reject|RCPT|127.0.0.1|550|5.1.1|nobody@$D|nosuchuser@$D"
check "unknown local user over SMTP: no queue file" \
    "SELECT count(*) FROM delivery_status WHERE recipient = 'nosuchuser@$D' OR message_id = 'e2e-unknown@$D'" \
    "0"
check "sendmail to an unknown local user: bounced" \
    "SELECT origin, sender, recipient, status, dsn, relay FROM delivery_status WHERE message_id = 'e2e-pickup@$D'" \
    "pickup|nobody@$D|nosuchuser2@$D|bounced|5.1.1|local"
check "its non-delivery notification: sent to the sender, linked to the bounced message" \
    "SELECT n.sender, n.recipient, n.status, n.parent_kind, n.parent_queue_id = b.queue_id FROM delivery_status n JOIN delivery_status b ON b.message_id = 'e2e-pickup@$D' WHERE n.parent_queue_id IS NOT NULL AND n.parent_kind = 'non_delivery'" \
    "|nobody@$D|sent|non_delivery|t"
check "relay refusing the connection: deferred" \
    "SELECT recipient, status, dsn, relay, attempts >= 1 FROM delivery_status WHERE message_id = 'e2e-refused@$D'" \
    "user@refused.test|deferred|4.4.1|none|t"
check "relay refusing the connection: the reason is kept" \
    "SELECT response LIKE '%127.0.0.1%Connection refused%' FROM delivery_status WHERE message_id = 'e2e-refused@$D'" \
    "t"
check "relay access denied from 127.0.0.2: NOQUEUE reject" \
    "SELECT daemon, action, stage, client_addr, code, dsn, sender, recipient FROM noqueue WHERE recipient = 'user@remote.example'" \
    "smtpd|reject|RCPT|127.0.0.2|554|5.7.1|nobody@$D|user@remote.example"
check "remote domain without DNS: deferred" \
    "SELECT recipient, status, dsn FROM delivery_status WHERE message_id = 'e2e-nodns@$D'" \
    "user@nodns.example|deferred|4.4.3"
check "nothing else was stored" \
    "SELECT (SELECT count(*) FROM delivery_status) || '|' || (SELECT count(*) FROM noqueue)" \
    "5|2"

# Wait until every check passes or time runs out, then report each.
deadline=$((SECONDS + WAIT_SECS))
while :; do
    all=1
    for i in "${!CHECK_NAMES[@]}"; do
        [ "$(q "${CHECK_SQL[$i]}")" = "${CHECK_WANT[$i]}" ] || { all=0; break; }
    done
    [ $all = 1 ] && break
    [ $SECONDS -ge $deadline ] && break
    if ! kill -0 "$PFTRACK_PID" 2>/dev/null; then
        say "pftrack run exited early:"
        cat "$WORK/pftrack.err" >&2
        break
    fi
    sleep 0.5
done

passed=0
failed=0
for i in "${!CHECK_NAMES[@]}"; do
    got=$(q "${CHECK_SQL[$i]}")
    if [ "$got" = "${CHECK_WANT[$i]}" ]; then
        passed=$((passed + 1))
        printf 'ok      %s\n' "${CHECK_NAMES[$i]}"
    else
        failed=$((failed + 1))
        printf 'FAILED  %s\n        want: %s\n        got:  %s\n' "${CHECK_NAMES[$i]}" \
            "${CHECK_WANT[$i]}" "$(printf '%s' "$got" | tr '\n' ';')"
    fi
done

# The daemon stops cleanly: SIGTERM, exit status 0.
kill -TERM "$PFTRACK_PID"
if wait "$PFTRACK_PID"; then
    passed=$((passed + 1))
    printf 'ok      %s\n' "pftrack run exits 0 on SIGTERM"
else
    failed=$((failed + 1))
    printf 'FAILED  %s\n' "pftrack run exits 0 on SIGTERM"
fi
PFTRACK_PID=

# And on disk: local(8) wrote the first message into nobody's mailbox.
if grep -q "^Message-ID: <e2e-local@$D>" "$WORK/mail/nobody" 2>/dev/null; then
    passed=$((passed + 1))
    printf 'ok      %s\n' "local delivery: the message is in nobody's mailbox"
else
    failed=$((failed + 1))
    printf 'FAILED  %s\n' "local delivery: the message is in nobody's mailbox"
fi

# pftrack report --mail-to through this Postfix (sendmail, pickup, local): the
# multipart text + HTML report lands in nobody's mailbox. Run in the namespace, where
# this Postfix is the local MTA; the database is reached by its Unix socket.
if ip netns exec "$NS" "$PFTRACK_BIN" report --database-url "$DB_URL" -d today \
    --mail-to "nobody@$MAILNAME" --mail-from "nobody@$MAILNAME" >"$WORK/report-mail.out" 2>&1; then
    for _ in $(seq 150); do
        grep -q '^Content-Type: text/html' "$WORK/mail/nobody" 2>/dev/null && break
        sleep 0.2
    done
fi
if grep -q '^Content-Type: multipart/alternative' "$WORK/mail/nobody" 2>/dev/null &&
    grep -q '^Content-Type: text/plain' "$WORK/mail/nobody" &&
    grep -q '^Content-Type: text/html' "$WORK/mail/nobody" &&
    grep -q '^Subject: .*report' "$WORK/mail/nobody"; then
    passed=$((passed + 1))
    printf 'ok      %s\n' "pftrack report --mail-to: delivered by this Postfix into nobody's mailbox (text + HTML)"
else
    failed=$((failed + 1))
    printf 'FAILED  %s\n' "pftrack report --mail-to: delivered by this Postfix into nobody's mailbox (text + HTML)"
    sed 's/^/        /' "$WORK/report-mail.out"
fi

if [ $failed -gt 0 ]; then
    say "Postfix's log as the journal has it:"
    journalctl --no-pager -o short-iso-precise --since "-5min" | grep " $SYSLOG_NAME/" >&2 || true
    say "pftrack's log:"
    cat "$WORK/pftrack.err" >&2
fi
echo "e2e: $passed passed, $failed failed"
[ $failed -eq 0 ]
