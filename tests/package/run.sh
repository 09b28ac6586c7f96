#!/usr/bin/env bash
# Package test: builds the Debian package (scripts/package), runs lintian,
# installs it with dpkg on this machine, checks what it installed, then purges
# it and checks that nothing of it remains.
#
# Usage (as root, from anywhere):   tests/package/run.sh
#   PFTRACK_DEB=path   test this .deb instead of building one
#   PFTRACK_BIN=path   passed to scripts/package (package this binary)
#
# lintian: no error may be reported; every warning must be listed, with its
# reason, in tests/package/lintian-expected (a new or a vanished warning fails).
# The user pftrack stays after the purge, as Debian policy has it for system
# users (see docs/deploy.md); the test checks that it was created right.
#
# It changes this machine (meant for a test machine): installs lintian and
# bash-completion when missing; installs and purges the pftrack package, so a
# pftrack installed by the package before the test is gone afterwards.
#
# Prints "package: N passed, M failed" last; exits non-zero on any failure.

set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$REPO/tests/package"
WORK=$(mktemp -d /tmp/pftrack-package.XXXXXX)
PASS=0
FAIL=0
SKIP=0
START=$(date +%s)

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; }
skip() { SKIP=$((SKIP + 1)); echo "skip - $1"; }
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
finish() {
    rm -rf "$WORK"
    echo "# $(($(date +%s) - START)) s"
    if [ "$SKIP" -gt 0 ]; then
        echo "package: $PASS passed, $FAIL failed, $SKIP skipped"
    else
        echo "package: $PASS passed, $FAIL failed"
    fi
    if [ "$FAIL" -eq 0 ]; then exit 0; else exit 1; fi
}
fatal() {
    bad "$1"
    finish
}

[ "$(id -u)" = 0 ] || fatal "must run as root (it installs and purges a package)"

apt_install() {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
need=""
command -v lintian >/dev/null || need="$need lintian"
[ -e /usr/share/bash-completion/bash_completion ] || need="$need bash-completion"
command -v man >/dev/null || need="$need man-db"
command -v dpkg-shlibdeps >/dev/null || need="$need dpkg-dev"
if [ -n "$need" ]; then
    check "installed the test's tools:$need" apt_install $need
fi

# --- build ------------------------------------------------------------------
if [ -n "${PFTRACK_DEB:-}" ]; then
    DEB=$PFTRACK_DEB
else
    build() {
        DEB=$("$REPO/scripts/package" 2>"$WORK/package.log" | tail -1) ||
            { tail -30 "$WORK/package.log"; return 1; }
    }
    check "scripts/package builds the .deb" build
fi
[ -n "${DEB:-}" ] && [ -f "$DEB" ] || fatal "no package to test"
echo "# package: $DEB ($(du -h "$DEB" | cut -f1))"

# --- lintian ----------------------------------------------------------------
lintian_ok() {
    # Default profile (errors and warnings); not as root would be nicer, but
    # the result is the same.
    lintian --no-tag-display-limit "$DEB" >"$WORK/lintian.log" 2>&1
    local rc=$?
    sed -n 's/^\([EW]: .*\)/\1/p' "$WORK/lintian.log" | sort -u >"$WORK/lintian.got"
    grep -E '^(E|W): ' "$HERE/lintian-expected" | sed 's/[[:space:]]*#.*$//' | sort -u >"$WORK/lintian.want"
    sed 's/^/#   lintian: /' "$WORK/lintian.got"
    if grep -q '^E: ' "$WORK/lintian.got"; then
        echo "#   lintian reports errors"
        return 1
    fi
    if ! diff -u "$WORK/lintian.want" "$WORK/lintian.got" >"$WORK/lintian.diff"; then
        echo "#   warnings differ from tests/package/lintian-expected (- expected, + got):"
        sed 's/^/#   /' "$WORK/lintian.diff"
        return 1
    fi
    # lintian exits 1 for errors only (fail-on default); anything else is a crash.
    [ "$rc" = 0 ] || { tail -5 "$WORK/lintian.log"; return 1; }
}
check "lintian: no errors, warnings as in tests/package/lintian-expected" lintian_ok

# --- install ----------------------------------------------------------------
# A clean start: no pftrack package; the user may exist from an earlier run.
if dpkg-query -W -f='${Status}' pftrack 2>/dev/null | grep -q 'installed\|config-files'; then
    dpkg --purge pftrack >/dev/null
fi
install_ok() {
    dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log"; return 1; }
    [ "$(dpkg-query -W -f='${Status}' pftrack)" = "install ok installed" ]
}
check "dpkg -i installs it" install_ok || fatal "not installed; cannot go on"
dpkg -L pftrack | sort >"$WORK/files"

version_ok() {
    local want got
    want=$(dpkg-query -W -f='${Version}' pftrack | sed 's/-[^-]*$//')
    got=$(/usr/bin/pftrack --version) || return 1
    echo "#   $got"
    [ "$got" = "pftrack $want" ] || [ "${got#pftrack "$want" }" != "$got" ]
}
check "pftrack --version prints the package's upstream version" version_ok

man_ok() {
    local page p
    for page in pftrack pftrack-backfill pftrack-run pftrack-status "5 pftrack.yaml"; do
        # shellcheck disable=SC2086 # "5 pftrack.yaml" is two words on purpose
        p=$(man -w $page 2>&1) || { echo "#   man -w $page: $p"; return 1; }
        echo "#   man -w $page: $p"
    done
    # The page renders without groff warnings.
    page=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l /usr/share/man/man1/pftrack-backfill.1.gz 2>&1 >/dev/null)
    [ -z "$page" ] || { echo "#   groff: $page"; return 1; }
    LC_ALL=C.UTF-8 MANWIDTH=80 man -l /usr/share/man/man1/pftrack-backfill.1.gz 2>/dev/null | grep -q -- '--defer-indexes'
}
check "man -w finds pftrack(1), pftrack-backfill(1) and pftrack.yaml(5); pages render cleanly" man_ok

completions_ok() {
    local f
    for f in /usr/share/bash-completion/completions/pftrack /usr/share/zsh/vendor-completions/_pftrack \
        /usr/share/fish/vendor_completions.d/pftrack.fish; do
        [ -s "$f" ] || { echo "#   missing: $f"; return 1; }
    done
    grep -q '^#compdef pftrack' /usr/share/zsh/vendor-completions/_pftrack &&
        grep -q 'complete -c pftrack' /usr/share/fish/vendor_completions.d/pftrack.fish
}
check "bash, zsh and fish completion files installed" completions_ok

bash_complete_ok() {
    local out words
    # An interactive bash loads bash-completion, which loads the installed
    # file on demand: `complete -p` after _completion_loader is what <TAB> does.
    out=$(HOME=$WORK bash -ic '_completion_loader pftrack 2>/dev/null; complete -p pftrack' 2>/dev/null) ||
        out=$(bash -c '. /usr/share/bash-completion/completions/pftrack && complete -p pftrack') || return 1
    echo "#   $out"
    grep -q 'pftrack$' <<<"$out" || return 1
    # What `pftrack <TAB>` offers: the subcommands, not the hidden generate.
    words=$(bash -c '. /usr/share/bash-completion/completions/pftrack
        COMP_WORDS=(pftrack ""); COMP_CWORD=1; COMP_LINE="pftrack "; COMP_POINT=8
        _pftrack pftrack "" pftrack; printf "%s\n" "${COMPREPLY[@]}"' 2>/dev/null)
    echo "#   pftrack <TAB>: $(echo $words)"
    grep -qx backfill <<<"$words" && grep -qx status <<<"$words" && ! grep -qx generate <<<"$words"
}
check "bash: complete -p pftrack is set, pftrack <TAB> offers the subcommands" bash_complete_ok

user_ok() {
    getent passwd pftrack >/dev/null &&
        [ "$(id -gn pftrack)" = pftrack ] &&
        grep -qx systemd-journal <<<"$(id -nG pftrack | tr ' ' '\n')" &&
        [ "$(getent passwd pftrack | cut -d: -f7)" = /usr/sbin/nologin ] &&
        [ "$(id -u pftrack)" -lt 1000 ]
}
check "system user pftrack: own group, in systemd-journal, no login shell" user_ok

conffile_ok() {
    dpkg-query -W -f='${Conffiles}\n' pftrack | grep -q '^ /etc/pftrack/pftrack.yaml ' &&
        [ "$(stat -c '%a %U %G' /etc/pftrack/pftrack.yaml)" = "640 root pftrack" ] &&
        [ "$(stat -c '%a %U %G' /etc/pftrack)" = "750 root pftrack" ] &&
        ! grep -Eq '^[[:space:]]*[^#[:space:]]' /etc/pftrack/pftrack.yaml &&
        # All commented out, it is still a configuration pftrack accepts.
        /usr/bin/pftrack --config /etc/pftrack/pftrack.yaml parse /dev/null >/dev/null
}
check "/etc/pftrack/pftrack.yaml: conffile, 0640 root:pftrack, every key commented, accepted" conffile_ok

units_disabled_ok() {
    local u
    for u in $(grep '^/usr/lib/systemd/system/' "$WORK/files"); do
        [ -f "$u" ] || continue
        grep -q '^ExecStart=/usr/bin/pftrack ' "$u" || grep -q '^\[Timer\]' "$u" ||
            { echo "#   $u does not run /usr/bin/pftrack"; return 1; }
        if [ -n "$(find /etc/systemd/system -name "$(basename "$u")" -type l 2>/dev/null)" ]; then
            echo "#   $(basename "$u") was enabled"
            return 1
        fi
    done
}
check "units installed to /usr/lib/systemd/system, run /usr/bin/pftrack, not enabled" units_disabled_ok

units_verify_ok() {
    local u out
    if ! command -v systemd-analyze >/dev/null; then
        echo "#   skipped: no systemd-analyze"
        return 0
    fi
    for u in $(grep -E '^/usr/lib/systemd/system/.*\.(service|timer|socket)$' "$WORK/files"); do
        out=$(systemd-analyze verify "$u" 2>&1) && [ -z "$out" ] || { echo "$out"; return 1; }
        echo "#   systemd-analyze verify $u: clean"
    done
}
if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify is clean on the installed units" units_verify_ok
else
    skip "systemd-analyze verify (systemd-analyze is not installed)"
fi

# An upgrade (the same binary, Debian revision + 1) keeps an edited conffile
# and its mode, as dpkg does for conffiles.
upgrade_keeps_config() {
    local rev deb2
    rev=$(dpkg-query -W -f='${Version}' pftrack | sed 's/.*-//')
    echo "# edited by the package test" >>/etc/pftrack/pftrack.yaml
    deb2=$(PFTRACK_BIN=/usr/bin/pftrack PFTRACK_DEB_REVISION=$((rev + 1)) "$REPO/scripts/package" \
        2>"$WORK/package2.log" | tail -1) || { tail -20 "$WORK/package2.log"; return 1; }
    dpkg -i --force-confold "$deb2" >"$WORK/dpkg-i2.log" 2>&1 || { cat "$WORK/dpkg-i2.log"; return 1; }
    rm -f "$deb2"
    echo "#   upgraded to $(dpkg-query -W -f='${Version}' pftrack)"
    grep -q -- "-$((rev + 1))\$" <<<"$(dpkg-query -W -f='${Version}' pftrack)" || return 1
    grep -q '^# edited by the package test' /etc/pftrack/pftrack.yaml &&
        [ "$(stat -c '%a %G' /etc/pftrack/pftrack.yaml)" = "640 pftrack" ] &&
        /usr/bin/pftrack --version >/dev/null
}
check "upgrading to the next Debian revision keeps the edited conffile and its mode" upgrade_keeps_config

# --- purge ------------------------------------------------------------------
purge_ok() {
    local f left=""
    dpkg --purge pftrack >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; return 1; }
    [ -z "$(dpkg-query -W -f='${Status}' pftrack 2>/dev/null | grep -v 'not-installed')" ] ||
        { echo "#   dpkg still knows pftrack: $(dpkg-query -W -f='${Status}' pftrack)"; return 1; }
    while read -r f; do
        # Directories shared with other packages (/usr, /usr/share/man/man1, ...) stay.
        [ -d "$f" ] && [ ! -L "$f" ] && [ "$(basename "$f")" != pftrack ] && continue
        if [ -e "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
    done <"$WORK/files"
    [ -e /etc/pftrack ] && left="$left /etc/pftrack"
    [ -z "$left" ] || { echo "#   left after purge:$left"; return 1; }
    echo "#   $(wc -l <"$WORK/files") paths of dpkg -L gone (or shared directories)"
}
check "dpkg --purge removes every file it installed, /etc/pftrack included" purge_ok

user_kept_ok() {
    # Debian policy: a system user is not removed on purge (files and database
    # roles may still refer to its uid).
    getent passwd pftrack >/dev/null
}
check "the system user pftrack is kept after purge (Debian policy)" user_kept_ok

finish
