#!/usr/bin/env bash
# Deployment test: lints the Ansible role, applies it for real to this
# machine (connection: local) and checks what it did, then scores the
# systemd unit. The role installs pftrack from its Debian package, which
# scripts/package builds from the binary under test; the deprecated way
# (building with cargo on the target) is checked once as well.
#
# Usage (as root, from anywhere):   tests/deploy/run.sh
#   PFTRACK_BIN=path   the pftrack binary to deploy (default: the newest of
#                      target/release/pftrack and target/debug/pftrack, also
#                      under $CARGO_TARGET_DIR). It must support `migrate`
#                      and `generate` (scripts/package packages it).
#   PFTRACK_DEB=path   deploy this .deb instead of packaging PFTRACK_BIN.
#   PFTRACK_DEPLOY_TLS=0  skip part (h), the remote database over TLS, and
#                      count its checks as skipped (for a pftrack without TLS).
#   PFTRACK_DEPLOY_BUILD=0  skip the check that builds pftrack with cargo
#                      through the role (pftrack_build_from_source).
#   PFTRACK_DEPLOY_BOOT=1  also boot a Debian 12 container with systemd
#                      (debootstrap + systemd-nspawn) and let systemd run the
#                      installed unit for real (part (i)); skipped otherwise.
#
# What it changes on this machine (it is meant for a test machine):
#   - a Python venv with pinned ansible and ansible-lint in $VENV;
#   - a dedicated PostgreSQL 15 cluster "pftrack_deploy" on port $PG_PORT,
#     dropped and created anew at every run (the main cluster is untouched);
#   - the package pftrack (purged first), the system user pftrack,
#     /etc/pftrack, /usr/local/bin/pftrack and
#     /etc/systemd/system/pftrack.service, removed first so that the first
#     run really creates them.
# systemd need not be PID 1: the role runs with pftrack_manage_service=false.
#
# Prints "deploy: N passed, M failed" last; exits non-zero on any failure.

set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$REPO/tests/deploy"
VENV=${PFTRACK_ANSIBLE_VENV:-/opt/pftrack-ci/ansible-venv}
# Pinned: the newest releases that still run on Python 3.11 (Debian 12).
ANSIBLE_PIN="ansible==12.3.0"
ANSIBLE_CORE_PIN="ansible-core==2.19.14"
ANSIBLE_LINT_PIN="ansible-lint==26.10.1"
PG_VERSION=15
PG_CLUSTER=pftrack_deploy
PG_PORT=5439
# The score the unit must stay at or under (issue 5).
MAX_EXPOSURE=2.0

PASS=0
FAIL=0
SKIP=0
WORK=$(mktemp -d /tmp/pftrack-deploy.XXXXXX)
LINT_CACHE_CREATED=0

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; }
# check NAME CMD...: one test; passes when CMD exits 0.
check() {
    local name=$1
    shift
    if [ "${SKIPPING:-0}" = 1 ]; then
        SKIP=$((SKIP + 1))
        echo "skip - $name"
        return
    fi
    if "$@"; then ok "$name"; else bad "$name"; fi
}
finish() {
    if [ -n "${BOOT_PID:-}" ]; then stop_boot; fi
    # ansible-lint creates an empty .ansible/ cache in the project root.
    if [ "$LINT_CACHE_CREATED" = 1 ] && [ -d "$REPO/.ansible" ]; then
        find "$REPO/.ansible" -depth -type d -empty -delete 2>/dev/null
    fi
    rm -rf "$WORK"
    if [ "$SKIP" -gt 0 ]; then
        echo "deploy: $PASS passed, $FAIL failed, $SKIP skipped"
    else
        echo "deploy: $PASS passed, $FAIL failed"
    fi
    if [ "$FAIL" -eq 0 ]; then exit 0; else exit 1; fi
}
# fatal MSG: stop here, counting one failure; the summary line still prints.
fatal() {
    bad "$1"
    finish
}

psql_admin() {
    runuser -u postgres -- psql -X -p "$PG_PORT" -v ON_ERROR_STOP=1 -Atq "$@"
}

[ "$(id -u)" = 0 ] || fatal "must run as root (it installs a user, a unit and a database)"

# --- (a) ansible, pinned, from PyPI ------------------------------------------
install_ansible() {
    local frozen
    frozen=$("$VENV/bin/pip" freeze 2>/dev/null || true)
    if [ -x "$VENV/bin/ansible-playbook" ] &&
        grep -qx "$ANSIBLE_PIN" <<<"$frozen" &&
        grep -qx "$ANSIBLE_CORE_PIN" <<<"$frozen" &&
        grep -qx "$ANSIBLE_LINT_PIN" <<<"$frozen"; then
        return 0
    fi
    local py=python3
    if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null || return 1
        py=/usr/bin/python3
    fi
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$py" -m venv "$VENV" &&
        "$VENV/bin/pip" install -q --disable-pip-version-check \
            "$ANSIBLE_PIN" "$ANSIBLE_CORE_PIN" "$ANSIBLE_LINT_PIN"
}
check "ansible ($ANSIBLE_PIN, $ANSIBLE_CORE_PIN, $ANSIBLE_LINT_PIN) installed in $VENV" install_ansible
[ -x "$VENV/bin/ansible-playbook" ] || fatal "ansible is not installed; cannot go on"
export PATH="$VENV/bin:$PATH"
export ANSIBLE_CONFIG="$REPO/ansible/ansible.cfg"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_DEPRECATION_WARNINGS=false

# --- (b) lint and syntax check -------------------------------------------------
[ -e "$REPO/.ansible" ] || LINT_CACHE_CREATED=1
lint() {
    (cd "$REPO/ansible" && ansible-lint --profile production --nocolor \
        playbook.yml roles/pftrack) >"$WORK/lint.log" 2>&1 ||
        { tail -40 "$WORK/lint.log"; return 1; }
}
check "ansible-lint --profile production passes on the role and playbook" lint
syntax() {
    (cd "$REPO/ansible" && ansible-playbook --syntax-check playbook.yml) >"$WORK/syntax.log" 2>&1 &&
        ansible-playbook -i "$HERE/inventory.yml" --syntax-check "$REPO/ansible/playbook.yml" \
            >>"$WORK/syntax.log" 2>&1 ||
        { cat "$WORK/syntax.log"; return 1; }
}
check "ansible-playbook --syntax-check passes on ansible/playbook.yml" syntax

# --- (b) config/pftrack.service under systemd-analyze ------------------------------
verify_unit() {
    # Verify in a root holding the unit, a stand-in binary at the ExecStart
    # path and the distribution's units (for the dependencies).
    local root="$WORK/root" out
    mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
    printf '#!/bin/sh\n' >"$root/usr/local/bin/pftrack"
    chmod 755 "$root/usr/local/bin/pftrack"
    cp "$REPO/config/pftrack.service" "$root/etc/systemd/system/"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
    # Any output (warnings too, which leave the exit code 0) fails the check.
    out=$(systemd-analyze verify --root="$root" /etc/systemd/system/pftrack.service 2>&1) &&
        [ -z "$out" ] || { echo "$out"; return 1; }
}
check "systemd-analyze verify is clean on config/pftrack.service" verify_unit

# exposure FILE: the overall exposure systemd-analyze gives the unit.
exposure() {
    (cd "$WORK" && systemd-analyze security --offline=true "$1" 2>&1) |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
score_ok() {
    local score
    score=$(exposure "$REPO/config/pftrack.service")
    echo "#   systemd-analyze security --offline=true config/pftrack.service: exposure $score"
    [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'
}
check "systemd-analyze security exposure <= $MAX_EXPOSURE" score_ok

# --- the binary under test --------------------------------------------------
find_binary() {
    if [ -n "${PFTRACK_BIN:-}" ]; then
        echo "$PFTRACK_BIN"
        return
    fi
    local c best=""
    for c in "${CARGO_TARGET_DIR:-$REPO/target}/release/pftrack" \
        "${CARGO_TARGET_DIR:-$REPO/target}/debug/pftrack" \
        "$REPO/target/release/pftrack" "$REPO/target/debug/pftrack"; do
        if [ -x "$c" ] && { [ -z "$best" ] || [ "$c" -nt "$best" ]; }; then best=$c; fi
    done
    echo "$best"
}
# Without a usable binary the role cannot be applied: stop after the checks
# above, counting one failure.
BIN=$(find_binary)
[ -n "$BIN" ] && [ -x "$BIN" ] ||
    fatal "no pftrack binary: build it (cargo build -p pftrack) or set PFTRACK_BIN"
BIN=$(readlink -f "$BIN")
echo "# binary under test: $BIN"
if ! grep -q -- '--config' <<<"$("$BIN" migrate --help 2>&1)"; then
    fatal "$BIN does not support 'pftrack migrate --config FILE', which the role runs"
fi
# Where the package installs the binary; the role's unit and migrations run it.
INSTALLED_BIN=/usr/bin/pftrack
package() {
    if [ -n "${PFTRACK_DEB:-}" ]; then
        DEB=$(readlink -f "$PFTRACK_DEB")
    else
        DEB=$(PFTRACK_BIN="$BIN" "$REPO/scripts/package" 2>"$WORK/package.log" | tail -1) ||
            { tail -20 "$WORK/package.log"; return 1; }
    fi
    [ -f "$DEB" ] && echo "#   package under test: $DEB"
}
check "scripts/package builds the Debian package of the binary under test" package ||
    fatal "no package to deploy"



# --- (c) a clean machine state and a fresh PostgreSQL cluster -----------------
# make_tls: a test CA, a server certificate for localhost signed by it, and
# a second CA that signed nothing; the cluster serves the certificate and
# logs how each connection was made.
make_tls() {
    local tls="$WORK/tls" conf="/etc/postgresql/$PG_VERSION/$PG_CLUSTER"
    mkdir -p "$tls" && (
        cd "$tls" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -subj "/CN=pftrack deploy test CA" -keyout ca.key -out ca.pem \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -subj "/CN=pftrack deploy test other CA" -keyout other.key -out other.pem \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -subj "/CN=localhost" -keyout server.key -out server.csr &&
            printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
                'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile server.ext -out server.crt
    ) >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log"; return 1; }
    install -o postgres -g postgres -m 0644 "$tls/server.crt" "$conf/server.crt" &&
        install -o postgres -g postgres -m 0600 "$tls/server.key" "$conf/server.key" &&
        mkdir -p "$conf/conf.d" &&
        printf '%s\n' "ssl = on" "ssl_cert_file = '$conf/server.crt'" \
            "ssl_key_file = '$conf/server.key'" "log_connections = on" >"$conf/conf.d/pftrack-test-tls.conf"
}

fresh_cluster() {
    if ! command -v pg_createcluster >/dev/null || [ ! -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ]; then
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PG_VERSION" >/dev/null || return 1
    fi
    if grep -qx "$PG_VERSION/$PG_CLUSTER" <<<"$(pg_lsclusters -h | awk '{print $1"/"$2}')"; then
        pg_dropcluster --stop "$PG_VERSION" "$PG_CLUSTER" || return 1
    fi
    pg_createcluster -p "$PG_PORT" "$PG_VERSION" "$PG_CLUSTER" >/dev/null &&
        make_tls &&
        pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start &&
        for _ in $(seq 1 30); do
            pg_isready -q -h /run/postgresql -p "$PG_PORT" && return 0
            sleep 1
        done
    return 1
}
check "fresh PostgreSQL $PG_VERSION cluster $PG_CLUSTER on port $PG_PORT, TLS with a test CA" fresh_cluster
clean_host() {
    if dpkg-query -W -f='${Status}' pftrack 2>/dev/null | grep -Eq 'installed|config-files'; then
        dpkg --purge pftrack >/dev/null || return 1
    fi
    rm -rf /etc/pftrack /usr/local/bin/pftrack /etc/systemd/system/pftrack.service \
        /etc/systemd/system/pftrack-export.service /etc/systemd/system/pftrack-export.timer \
        /etc/pftrack-web /etc/systemd/system/pftrack-serve.service
    local u
    for u in pftrack pftrack-web; do
        if getent passwd "$u" >/dev/null; then userdel "$u" || return 1; fi
        if getent group "$u" >/dev/null; then groupdel "$u" || return 1; fi
    done
    return 0
}
check "no pftrack package, user, config, binary or unit left from an earlier run" clean_host

READER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
OWNER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
cat >"$WORK/vars.yml" <<EOF
pftrack_package_src: "$DEB"
pftrack_manage_service: false
pftrack_install_postgresql: true
pftrack_postgresql_port: $PG_PORT
pftrack_database_reader_password: "$READER_PASSWORD"
pftrack_database_password: "$OWNER_PASSWORD"
EOF

# apply N: runs the example playbook against this machine; log in $WORK/runN.log
apply() {
    ansible-playbook -i "$HERE/inventory.yml" -e "@$WORK/vars.yml" \
        "$REPO/ansible/playbook.yml" >"$WORK/run$1.log" 2>&1
}
# recap N FIELD: a number from the PLAY RECAP line of localhost in run N.
recap() {
    sed -n "s/^localhost *: .*\b$2=\([0-9]*\).*/\1/p" "$WORK/run$1.log" | tail -1
}

first_run() {
    apply 1 || { tail -60 "$WORK/run1.log"; return 1; }
    local changed
    changed=$(recap 1 changed)
    echo "#   first run: changed=$changed failed=$(recap 1 failed)"
    [ -n "$changed" ] && [ "$changed" -gt 0 ]
}
check "first run of the role applies changes and succeeds" first_run

# secrets_not_logged N: neither password appears in the output of run N.
secrets_not_logged() {
    ! grep -qe "$READER_PASSWORD" -e "$OWNER_PASSWORD" "$WORK/run$1.log"
}
check "the database passwords never appear in the Ansible output" secrets_not_logged 1

# --- (d) what the role did ------------------------------------------------------
user_ok() {
    local shell uid
    getent passwd pftrack >/dev/null || return 1
    shell=$(getent passwd pftrack | cut -d: -f7)
    uid=$(id -u pftrack)
    grep -qx systemd-journal <<<"$(id -nG pftrack | tr ' ' '\n')" &&
        [ "$(id -gn pftrack)" = pftrack ] &&
        [ "$shell" = /usr/sbin/nologin ] &&
        [ "$uid" -lt 1000 ]
}
check "system user pftrack: own group, in systemd-journal, no login shell" user_ok

binary_ok() {
    # The package's version is installed, its binary unaltered (dpkg -V checks
    # the md5sums), and it is the binary under test.
    [ "$(dpkg-query -W -f='${Status} ${Version}' pftrack)" = \
        "install ok installed $(dpkg-deb -f "$DEB" Version)" ] &&
        [ -z "$(dpkg -V pftrack | grep " $INSTALLED_BIN\$")" ] &&
        [ "$(stat -c '%a %U %G' "$INSTALLED_BIN")" = "755 root root" ] &&
        [ "$("$INSTALLED_BIN" --version)" = "$("$BIN" --version)" ] &&
        [ ! -e /usr/local/bin/pftrack ]
}
check "package installed with apt; binary $INSTALLED_BIN (0755 root:root) from it" binary_ok

config_ok() {
    [ "$(stat -c '%a %U %G' /etc/pftrack/pftrack.yaml)" = "640 root pftrack" ] &&
        [ "$(stat -c '%a %U %G' /etc/pftrack)" = "750 root pftrack" ] &&
        "$VENV/bin/python" - "$PG_PORT" <<'PY'
import sys, yaml
port = sys.argv[1]
got = yaml.safe_load(open("/etc/pftrack/pftrack.yaml"))
want = {
    "database": {"url": f"host=/run/postgresql port={port} user=pftrack dbname=pftrack"},
    "journal": {"identifiers": ["postfix"], "since": "7d"},
    "batch": {"max_records": 2000, "max_delay_ms": 250},
    "retention": "90d",
    "log_level": "info",
    "metrics": {"listen": "127.0.0.1:9154"},
}
if got != want:
    print(f"#   config is {got!r}\n#   expected {want!r}")
    sys.exit(1)
PY
}
check "/etc/pftrack/pftrack.yaml: mode 0640 root:pftrack, expected content" config_ok

unit_ok() {
    # config/pftrack.service runs /usr/local/bin/pftrack; the package's copy
    # and the role's run the package's binary.
    sed "s#/usr/local/bin/pftrack#$INSTALLED_BIN#" "$REPO/config/pftrack.service" >"$WORK/unit.want" &&
        cmp "$WORK/unit.want" /usr/lib/systemd/system/pftrack.service &&
        cmp "$WORK/unit.want" /etc/systemd/system/pftrack.service &&
        [ "$(stat -c '%a %U' /etc/systemd/system/pftrack.service)" = "644 root" ]
}
check "unit installed to /etc/systemd/system, identical to config/pftrack.service (binary $INSTALLED_BIN)" unit_ok

db_ok() {
    [ "$(psql_admin -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'pftrack'")" = pftrack ]
}
check "database pftrack exists, owned by role pftrack" db_ok

roles_ok() {
    local owner reader
    owner=$(psql_admin -c "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'pftrack'")
    reader=$(psql_admin -c "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'pftrack_reader'")
    echo "#   pftrack: $owner  pftrack_reader: $reader"
    [ "$owner" = "t|f|f|f" ] && [ "$reader" = "t|f|f|f" ]
}
check "roles pftrack and pftrack_reader exist, unprivileged, can log in" roles_ok

privileges_ok() {
    local got
    got=$(psql_admin -d pftrack -c "SELECT
        has_database_privilege('pftrack_reader', 'pftrack', 'CONNECT'),
        has_database_privilege('pftrack_reader', 'pftrack', 'TEMPORARY'),
        has_schema_privilege('pftrack_reader', 'public', 'USAGE'),
        has_schema_privilege('pftrack_reader', 'public', 'CREATE'),
        has_schema_privilege('pftrack', 'public', 'CREATE'),
        (SELECT count(*) FROM pg_default_acl d
           WHERE d.defaclrole = 'pftrack'::regrole
             AND d.defaclnamespace = 'public'::regnamespace
             AND d.defaclobjtype = 'r'
             AND 'pftrack_reader=r/pftrack' = ANY (d.defaclacl::text[])),
        (SELECT count(*) FROM aclexplode((SELECT datacl FROM pg_database WHERE datname = 'pftrack')) a
           WHERE a.grantee = 0)")
    echo "#   connect,temp,usage,create(reader),create(owner),default-acl,public-grants: $got"
    [ "$got" = "t|f|t|f|t|1|0" ]
}
check "privileges: reader may connect and use the schema, not create; default SELECT for future tables" privileges_ok

migrated_ok() {
    [ "$(psql_admin -d pftrack -c "SELECT count(*) FROM pg_views WHERE schemaname = 'public' AND viewname = 'delivery_status' AND viewowner = 'pftrack'")" = 1 ]
}
check "pftrack migrate ran as pftrack: view delivery_status exists, owned by pftrack" migrated_ok

# --- (e) idempotence ----------------------------------------------------------------
second_run() {
    apply 2 || { tail -60 "$WORK/run2.log"; return 1; }
    local changed failed
    changed=$(recap 2 changed)
    failed=$(recap 2 failed)
    echo "#   second run: changed=$changed failed=$failed"
    if [ "$changed" != 0 ]; then grep -B1 -A3 '^changed:' "$WORK/run2.log" | head -40; fi
    [ "$changed" = 0 ] && [ "$failed" = 0 ]
}
check "second run reports changed=0" second_run

# The other way to get the binary: build it on the target with cargo.
# When the sources in the work tree are as committed and the binary under
# test is cargo's output (<target>/{debug,release}/pftrack), the role builds
# this tree into that same target directory, which is quick (nothing or
# little to rebuild). Otherwise (someone's unfinished edits in the work tree)
# it builds the committed tree (git archive HEAD) in a target directory of
# its own under /opt/pftrack-ci: slower the first time, and git archive keeps
# the commit's time as mtime, so an unchanged commit is not rebuilt later.
build_from_source() {
    local cargo_bin src tdir profile_dir profile
    cargo_bin=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
    [ -x "$cargo_bin" ] || { echo "#   no cargo on this machine"; return 1; }
    profile_dir=$(basename "$(dirname "$BIN")")
    if [ -z "$(git -C "$REPO" status --porcelain -- Cargo.toml Cargo.lock crates migrations .cargo 2>&1)" ] &&
        { [ "$profile_dir" = debug ] || [ "$profile_dir" = release ]; }; then
        src=$REPO
        tdir=$(dirname "$(dirname "$BIN")")
    else
        src=/opt/pftrack-ci/build-src
        tdir=/opt/pftrack-ci/build-target
        profile_dir=debug
        rm -rf "$src" && mkdir -p "$src" "$tdir" || return 1
        git -C "$REPO" archive HEAD | tar -x -C "$src" || return 1
    fi
    if [ "$profile_dir" = debug ]; then profile=dev; else profile=release; fi
    echo "#   building $src (profile $profile) into $tdir"
    cat >"$WORK/vars-build.yml" <<VARS
pftrack_package_src: ""
pftrack_build_from_source: true
pftrack_source_dir: "$src"
pftrack_cargo: "$cargo_bin"
pftrack_cargo_profile: $profile
pftrack_cargo_target_dir: "$tdir"
VARS
    ansible-playbook -i "$HERE/inventory.yml" -e "@$WORK/vars.yml" -e "@$WORK/vars-build.yml" \
        "$REPO/ansible/playbook.yml" >"$WORK/run-build.log" 2>&1 ||
        { grep -E '^fatal' "$WORK/run-build.log" | cut -c 1-1500; return 1; }
    grep -Eq '^(ok|changed):' <<<"$(grep -A1 'TASK \[pftrack : Build pftrack with cargo\]' "$WORK/run-build.log")" ||
        { echo "#   the build task did not run"; return 1; }
    echo "#   build-from-source run: changed=$(recap -build changed)"
    cmp -s "$tdir/$profile_dir/pftrack" /usr/local/bin/pftrack &&
        /usr/local/bin/pftrack migrate --help >/dev/null
}
[ "${PFTRACK_DEPLOY_BUILD:-1}" = 0 ] && SKIPPING=1
check "pftrack_build_from_source: cargo builds on the target and the role installs that binary" build_from_source
SKIPPING=0

# --- (f) the installed unit under systemd-analyze -----------------------------------
installed_unit_ok() {
    local out
    out=$(systemd-analyze verify /etc/systemd/system/pftrack.service 2>&1) &&
        [ -z "$out" ] || { echo "$out"; return 1; }
}
check "systemd-analyze verify is clean on the installed unit, with the installed binary" installed_unit_ok

# --- (f2) the accounting export timer (off by default) ------------------------------
export_timer_ok() {
    [ ! -e /etc/systemd/system/pftrack-export.timer ] || { echo "#   installed while off"; return 1; }
    local dir=/var/lib/pftrack/accounting
    ansible-playbook -i "$HERE/inventory.yml" -e "@$WORK/vars.yml" -e pftrack_export_timer=true \
        -e pftrack_export_format=csv "$REPO/ansible/playbook.yml" >"$WORK/run-export.log" 2>&1 ||
        { grep -E '^fatal' "$WORK/run-export.log" | cut -c 1-1500; return 1; }
    local out
    out=$(systemd-analyze verify /etc/systemd/system/pftrack-export.service \
        /etc/systemd/system/pftrack-export.timer 2>&1) && [ -z "$out" ] || { echo "$out"; return 1; }
    grep -qx "ExecStart=$INSTALLED_BIN export --config /etc/pftrack/pftrack.yaml --output $dir --format csv --rotate-size 200M --rotate-interval 1d" \
        /etc/systemd/system/pftrack-export.service || { grep ExecStart /etc/systemd/system/pftrack-export.service; return 1; }
    [ "$(stat -c '%a %U %G' "$dir")" = "750 pftrack pftrack" ] || return 1
    # The service's command, as its user, against the deployed database.
    runuser -u pftrack -- "$INSTALLED_BIN" export --config /etc/pftrack/pftrack.yaml \
        --output "$dir" --format csv 2>&1 | sed 's/^/#   /'
    [ -d "$dir/archive" ] &&
        [ "$(psql_admin -d pftrack -c "SELECT count(*) FROM export_target WHERE target = '$dir'")" = 1 ] || return 1
    # Off again: both units removed.
    ansible-playbook -i "$HERE/inventory.yml" -e "@$WORK/vars.yml" "$REPO/ansible/playbook.yml" \
        >"$WORK/run-export-off.log" 2>&1 || { tail -30 "$WORK/run-export-off.log"; return 1; }
    [ ! -e /etc/systemd/system/pftrack-export.timer ] && [ ! -e /etc/systemd/system/pftrack-export.service ]
}
check "pftrack_export_timer: export units installed and verified, the export runs as pftrack; removed when off" export_timer_ok

# --- (f3) the web UI and API (off by default) -------------------------------------
web_ok() {
    [ ! -e /etc/systemd/system/pftrack-serve.service ] || { echo "#   installed while off"; return 1; }
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ansible-playbook -i "$HERE/inventory.yml" -e "@$WORK/vars.yml" -e pftrack_web_enabled=true \
        -e "pftrack_web_listen=127.0.0.1:$port" "$REPO/ansible/playbook.yml" >"$WORK/run-web.log" 2>&1 ||
        { grep -E '^fatal' "$WORK/run-web.log" | cut -c 1-1500; return 1; }
    local out
    out=$(systemd-analyze verify /etc/systemd/system/pftrack-serve.service 2>&1) && [ -z "$out" ] ||
        { echo "$out"; return 1; }
    grep -qx "ExecStart=$INSTALLED_BIN serve --config /etc/pftrack-web/pftrack-web.yaml" \
        /etc/systemd/system/pftrack-serve.service || return 1
    [ "$(stat -c '%a %U %G' /etc/pftrack-web/pftrack-web.yaml)" = "640 root pftrack-web" ] || return 1
    # Its own user cannot read the loader's configuration.
    ! runuser -u pftrack-web -- cat /etc/pftrack/pftrack.yaml >/dev/null 2>&1 || return 1
    [ "$(psql_admin -c "SELECT pg_has_role('pftrack-web', 'pftrack_web_read', 'MEMBER')")" = t ] || return 1
    # An admin user and a token, made by the loader's user (the owner of the tables).
    printf '%s\n' 'deploy-test-password-1' | runuser -u pftrack -- "$INSTALLED_BIN" user add deploy \
        --role admin --password-stdin --config /etc/pftrack/pftrack.yaml >/dev/null || return 1
    local token
    token=$(runuser -u pftrack -- "$INSTALLED_BIN" user token add deploy ci --config /etc/pftrack/pftrack.yaml |
        grep -oE '[A-Za-z0-9_-]{20,}' | tail -1)
    # The service's command, as its user, with its own configuration.
    runuser -u pftrack-web -- "$INSTALLED_BIN" serve --config /etc/pftrack-web/pftrack-web.yaml \
        >"$WORK/serve.log" 2>&1 &
    local pid=$! ok=1 i
    for i in $(seq 50); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/login" 2>/dev/null && break
        sleep 0.2
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port/login" &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/me")" = 401 ] &&
        curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/me" | grep -q '"deploy"' &&
        curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/search" >/dev/null || ok=0
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    [ "$ok" = 1 ] || { sed 's/^/#   /' "$WORK/serve.log" | tail -20; return 1; }
    runuser -u pftrack -- "$INSTALLED_BIN" user remove deploy --config /etc/pftrack/pftrack.yaml >/dev/null || return 1
    # Off again: the unit removed.
    ansible-playbook -i "$HERE/inventory.yml" -e "@$WORK/vars.yml" "$REPO/ansible/playbook.yml" \
        >"$WORK/run-web-off.log" 2>&1 || { tail -30 "$WORK/run-web-off.log"; return 1; }
    [ ! -e /etc/systemd/system/pftrack-serve.service ]
}
check "pftrack_web_enabled: serve unit verified, own user and config, login role in pftrack_web_read; serve answers as pftrack-web; removed when off" web_ok

# --- (g) the read-only role over TCP with a password --------------------------------
reader_sql() {
    PGPASSWORD=$READER_PASSWORD psql -X -h localhost -p "$PG_PORT" -U pftrack_reader -d pftrack \
        -v ON_ERROR_STOP=1 -Atq "$@"
}
reader_select() {
    local views v
    views=$(psql_admin -d pftrack -c "SELECT viewname FROM pg_views WHERE schemaname = 'public' ORDER BY 1")
    [ -n "$views" ] || return 1
    for v in $views; do
        reader_sql -c "SELECT count(*) FROM public.\"$v\"" >/dev/null || { echo "#   cannot read view $v"; return 1; }
    done
    echo "#   reader read views: $(echo $views)"
}
check "pftrack_reader logs in over TCP and SELECTs from every view" reader_select

# denied SQL [VIEW]: passes when the reader's statement fails with
# 'permission denied'. For a view that joins tables PostgreSQL refuses any
# write before it checks privileges ("cannot insert into view"), so with
# VIEW=view that refusal counts too.
denied() {
    local err
    if err=$(reader_sql -c "$1" 2>&1); then
        echo "#   reader was allowed: $1"
        return 1
    fi
    # Here-strings, not `echo | grep -q`: under pipefail, grep -q exiting at the
    # first match can kill echo with SIGPIPE and fail the pipeline (seen in CI).
    grep -q "permission denied" <<<"$err" && return 0
    if [ "${2:-}" = view ] && grep -Eq 'cannot (insert into|update|delete from) view' <<<"$err"; then
        return 0
    fi
    echo "#   unexpected error for '$1': $err"
    return 1
}
reader_cannot_write() {
    local rels r col kind n=0
    rels=$(psql_admin -d pftrack -c "SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'p') ORDER BY 1")
    for r in $rels; do
        kind=$(psql_admin -d pftrack -c "SELECT CASE relkind WHEN 'v' THEN 'view' ELSE 'table' END
            FROM pg_class WHERE oid = 'public.\"$r\"'::regclass")
        # Not a GENERATED ALWAYS column: PostgreSQL refuses to update those before it
        # checks privileges, which would hide what this check is about.
        col=$(psql_admin -d pftrack -c "SELECT attname FROM pg_attribute
            WHERE attrelid = 'public.\"$r\"'::regclass AND attnum > 0 AND NOT attisdropped
              AND attidentity <> 'a' AND attgenerated = ''
            ORDER BY attnum LIMIT 1")
        denied "INSERT INTO public.\"$r\" DEFAULT VALUES" "$kind" || return 1
        denied "UPDATE public.\"$r\" SET \"$col\" = \"$col\"" "$kind" || return 1
        denied "DELETE FROM public.\"$r\"" "$kind" || return 1
        if [ "$kind" = table ]; then denied "TRUNCATE public.\"$r\"" table || return 1; fi
        n=$((n + 1))
    done
    denied "CREATE TABLE public.reader_was_here (x int)" || return 1
    echo "#   INSERT/UPDATE/DELETE (TRUNCATE on tables) denied on $n tables and views, CREATE TABLE denied"
    [ "$n" -gt 0 ]
}
check "pftrack_reader cannot INSERT, UPDATE, DELETE, TRUNCATE or CREATE" reader_cannot_write

# --- (h) a mail host of a fleet: remote database over TLS, verify-full --------------
# The same machine now plays a mail host whose database is elsewhere: the
# role leaves the database alone, pftrack connects over TCP with a password
# and verifies the server against the CA file that the role copies.
[ "${PFTRACK_DEPLOY_TLS:-1}" = 0 ] && SKIPPING=1
PG_LOG="/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log"
REMOTE_URL="host=localhost port=$PG_PORT dbname=pftrack user=pftrack password=$OWNER_PASSWORD"
cat >"$WORK/vars-remote.yml" <<VARS
pftrack_package_src: "$DEB"
pftrack_manage_service: false
pftrack_manage_database: false
pftrack_database_url: "$REMOTE_URL sslmode=verify-full"
pftrack_database_ca_file: "$WORK/tls/ca.pem"
pftrack_ip_address_allow:
  - localhost
VARS
apply_remote() {
    ansible-playbook -i "$HERE/inventory.yml" -e "@$WORK/vars-remote.yml" \
        "$REPO/ansible/playbook.yml" >"$WORK/run$1.log" 2>&1
}
PG_LOG_BEFORE=$(wc -l <"$PG_LOG" 2>/dev/null || echo 0)
remote_run() {
    apply_remote 3 || { tail -60 "$WORK/run3.log"; return 1; }
    echo "#   remote run: changed=$(recap 3 changed) failed=$(recap 3 failed)"
}
check "role applies for a remote database (manage_database=false, verify-full, CA file)" remote_run
check "the database passwords never appear in the Ansible output (remote run)" secrets_not_logged 3

remote_files_ok() {
    cmp -s "$WORK/tls/ca.pem" /etc/pftrack/ca.pem &&
        [ "$(stat -c '%a %U %G' /etc/pftrack/ca.pem)" = "640 root pftrack" ] &&
        "$VENV/bin/python" - "$REMOTE_URL sslmode=verify-full" <<'PY'
import sys, yaml
got = yaml.safe_load(open("/etc/pftrack/pftrack.yaml"))["database"]
sys.exit(0 if got == {"url": sys.argv[1], "ca_file": "/etc/pftrack/ca.pem"} else 1)
PY
}
check "CA copied to /etc/pftrack/ca.pem (0640 root:pftrack); config has the DSN and ca_file" remote_files_ok

migrate_used_tls() {
    # pftrack migrate ran in the remote run; the server logged how it came.
    tail -n +"$((PG_LOG_BEFORE + 1))" "$PG_LOG" |
        grep -qE 'connection authorized: user=pftrack database=pftrack.*SSL enabled' ||
        { echo "#   no TLS connection of user pftrack in $PG_LOG"; return 1; }
}
check "pftrack migrate reached the database over TLS" migrate_used_tls

# migrate_with URL [CA]: runs pftrack migrate as user pftrack with a
# configuration holding that database URL and CA file.
migrate_with() {
    local dir rc
    dir=$(mktemp -d /tmp/pftrack-deploy-cfg.XXXXXX)
    chgrp pftrack "$dir" && chmod 0750 "$dir"
    {
        echo "database:"
        echo "  url: \"$1\""
        if [ -n "${2:-}" ]; then
            install -o root -g pftrack -m 0640 "$2" "$dir/ca.pem"
            echo "  ca_file: $dir/ca.pem"
        fi
        printf '%s\n' "journal:" "  identifiers: [postfix]" "  since: 7d" "batch:" \
            "  max_records: 2000" "  max_delay_ms: 250" "log_level: info"
    } >"$dir/pftrack.yaml"
    chgrp pftrack "$dir/pftrack.yaml" && chmod 0640 "$dir/pftrack.yaml"
    runuser -u pftrack -- "$INSTALLED_BIN" migrate --config "$dir/pftrack.yaml" >"$WORK/migrate.log" 2>&1
    rc=$?
    rm -rf "$dir"
    return $rc
}
wrong_ca_refused() {
    # The right CA must work with this very configuration, so that the
    # refusal below is about the certificate and not about the DSN.
    migrate_with "$REMOTE_URL sslmode=verify-full" "$WORK/tls/ca.pem" ||
        { echo "#   fails even with the right CA: $(tail -1 "$WORK/migrate.log")"; return 1; }
    if migrate_with "$REMOTE_URL sslmode=verify-full" "$WORK/tls/other.pem"; then
        echo "#   migrate succeeded although that CA did not sign the server's certificate"
        return 1
    fi
    echo "#   refused: $(tail -1 "$WORK/migrate.log")"
}
check "verify-full: the right CA connects, a CA that did not sign the server's certificate is refused" wrong_ca_refused

require_ok() {
    migrate_with "$REMOTE_URL sslmode=require" && grep -q '^applied 0 migration' "$WORK/migrate.log" ||
        { cat "$WORK/migrate.log"; return 1; }
}
check "sslmode=require without a CA file connects" require_ok

remote_unit_ok() {
    local score out
    grep -qx 'IPAddressDeny=any' /etc/systemd/system/pftrack.service &&
        grep -qx 'IPAddressAllow=localhost' /etc/systemd/system/pftrack.service || return 1
    out=$(systemd-analyze verify /etc/systemd/system/pftrack.service 2>&1) && [ -z "$out" ] ||
        { echo "$out"; return 1; }
    score=$(exposure /etc/systemd/system/pftrack.service)
    echo "#   with pftrack_ip_address_allow=[localhost]: exposure $score"
    [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'
}
check "unit with an IP allow list: verify clean, exposure <= $MAX_EXPOSURE" remote_unit_ok

remote_second_run() {
    apply_remote 4 || { tail -60 "$WORK/run4.log"; return 1; }
    local changed
    changed=$(recap 4 changed)
    echo "#   remote second run: changed=$changed failed=$(recap 4 failed)"
    if [ "$changed" != 0 ]; then grep -B1 -A3 '^changed:' "$WORK/run4.log" | head -40; fi
    [ "$changed" = 0 ]
}
check "remote second run reports changed=0" remote_second_run
SKIPPING=0

# --- (i) the service started by a real systemd (PFTRACK_DEPLOY_BOOT=1) --------------
# systemd is not PID 1 here, so a minimal Debian 12 root (debootstrap, kept
# in $BOOT_ROOT between runs) is booted with systemd-nspawn, sharing this
# machine's network. What the role installed above (binary, configuration
# for the remote database over TLS, CA, unit with its IP allow list) is
# copied in, pftrack is started by systemd under the unit's sandbox, and
# Postfix lines logged inside the container must reach the database.
BOOT_ROOT=/opt/pftrack-ci/nspawn/root
BOOT_PID=""
# in_boot CMD...: runs CMD inside the booted container.
in_boot() {
    local nspawn init
    # $BOOT_PID is timeout(1); its child is systemd-nspawn, whose child is
    # the container's systemd.
    nspawn=$(pgrep -P "$BOOT_PID" -x systemd-nspawn | head -1)
    [ -n "$nspawn" ] && init=$(pgrep -P "$nspawn" | head -1)
    [ -n "${init:-}" ] && nsenter -t "$init" -a "$@"
}
stop_boot() {
    [ -n "$BOOT_PID" ] || return 0
    in_boot systemctl poweroff >/dev/null 2>&1
    for _ in $(seq 1 20); do
        kill -0 "$BOOT_PID" 2>/dev/null || { BOOT_PID=""; return 0; }
        sleep 1
    done
    kill "$BOOT_PID" 2>/dev/null
    BOOT_PID=""
}
boot_prepare() {
    local pkgs="" uid gid
    command -v systemd-nspawn >/dev/null || pkgs="$pkgs systemd-container"
    command -v debootstrap >/dev/null || pkgs="$pkgs debootstrap"
    if [ -n "$pkgs" ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null || return 1
    fi
    if [ ! -e "$BOOT_ROOT/.pftrack-ready" ]; then
        rm -rf "$BOOT_ROOT" && mkdir -p "$BOOT_ROOT" &&
            debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,bsdutils \
                bookworm "$BOOT_ROOT" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
            { tail -5 "$WORK/debootstrap.log"; return 1; }
        printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$BOOT_ROOT/etc/hosts"
        touch "$BOOT_ROOT/.pftrack-ready"
    fi
    # The same uid and gid as on this machine: the files keep their owner.
    uid=$(id -u pftrack)
    gid=$(id -g pftrack)
    chroot "$BOOT_ROOT" sh -c "userdel pftrack 2>/dev/null; groupdel pftrack 2>/dev/null;
        groupadd --system --gid $gid pftrack &&
        useradd --system --uid $uid --gid pftrack --groups systemd-journal \
            --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin pftrack" || return 1
    rm -rf "$BOOT_ROOT/etc/pftrack" &&
        cp -a /etc/pftrack "$BOOT_ROOT/etc/pftrack" &&
        cp -a "$INSTALLED_BIN" "$BOOT_ROOT$INSTALLED_BIN" &&
        cp -a /etc/systemd/system/pftrack.service "$BOOT_ROOT/etc/systemd/system/pftrack.service" &&
        chroot "$BOOT_ROOT" systemctl enable pftrack.service >/dev/null 2>&1
}
boot_start() {
    boot_prepare || return 1
    (cd / && exec timeout 600 systemd-nspawn -D "$BOOT_ROOT" -M pftrack-deploy-test \
        --register=no --keep-unit -b >"$WORK/boot.log" 2>&1) &
    BOOT_PID=$!
    local state=""
    for _ in $(seq 1 90); do
        state=$(in_boot systemctl show -p ActiveState --value pftrack.service 2>/dev/null)
        [ "$state" = active ] && break
        sleep 1
    done
    in_boot systemctl status --no-pager -n 5 pftrack.service 2>&1 | cut -c 1-200 | sed 's/^/#   /'
    [ "$state" = active ] &&
        [ "$(in_boot systemctl show -p StatusText --value pftrack.service)" = "following the journal" ]
}
# boot_delivery QUEUE-ID: logs a delivery inside the container and waits for
# it in delivery_status.
boot_delivery() {
    in_boot sh -c "
        logger -t postfix/qmgr --id=4242 '$1: from=<deploy-test@example.com>, size=99, nrcpt=1 (queue active)'
        logger -t postfix/local --id=4243 '$1: to=<root@localhost>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)'
        logger -t postfix/qmgr --id=4242 '$1: removed'" || return 1
    for _ in $(seq 1 30); do
        [ "$(psql_admin -d pftrack -c "SELECT status FROM delivery_status WHERE queue_id = '$1'")" = sent ] && return 0
        sleep 1
    done
    echo "#   $1 did not reach the database"
    return 1
}
BOOT_QID=$(printf '%X' "$(date +%s)")
boot_watchdog() {
    [ "$(in_boot systemctl show -p WatchdogUSec --value pftrack.service)" = 1min ] &&
        [ -n "$(in_boot systemctl show -p WatchdogTimestampMonotonic --value pftrack.service | grep -v '^0$')" ]
}
boot_restart() {
    in_boot systemctl restart pftrack.service &&
        [ "$(in_boot systemctl show -p ActiveState --value pftrack.service)" = active ] &&
        boot_delivery "${BOOT_QID}B"
}
boot_score() {
    local score
    score=$(in_boot systemd-analyze security pftrack.service 2>/dev/null |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "#   systemd-analyze security pftrack.service under systemd: exposure $score"
    [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'
}
[ "${PFTRACK_DEPLOY_BOOT:-0}" = 1 ] || SKIPPING=1
check "booted systemd starts pftrack under the unit's sandbox; it reports READY" boot_start
if [ -z "$BOOT_PID" ] && [ "${SKIPPING:-0}" = 0 ]; then SKIPPING=1; fi
check "Postfix lines logged under systemd reach delivery_status (journal -> TLS -> PostgreSQL)" boot_delivery "${BOOT_QID}A"
check "the watchdog is armed (WatchdogSec=60) and pinged" boot_watchdog
check "systemctl restart resumes; a new delivery arrives" boot_restart
check "online systemd-analyze security exposure <= $MAX_EXPOSURE" boot_score
stop_boot
SKIPPING=0

finish
