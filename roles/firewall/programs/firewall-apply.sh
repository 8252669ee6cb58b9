#!/bin/sh
# Managed by clawlan (role firewall). Loads the appliance's nftables ruleset so that a mistake cannot lock anyone out.
#   firewall-apply load [SECONDS]  check the staged ruleset, put it in service, and arm a rollback in SECONDS
#   firewall-apply confirm         keep it: a fresh SSH connection came through it (the deploy's own check)
#   firewall-apply rollback        put the previous ruleset back (what the armed timer runs)
set -eu
table=inet\ clawlan
staged=/etc/clawlan/firewall.nft.next
rules=/etc/clawlan/firewall.nft
previous=/etc/clawlan/firewall.nft.previous
loaded=/etc/clawlan/firewall.loaded
timer=clawlan-firewall-rollback

record() {
    # What the live table is held to: its stateless listing (no counter values) right after a good load.
    if nft list table $table > /dev/null 2>&1; then
        nft -s list table $table > "$loaded.partial" && mv "$loaded.partial" "$loaded"
    else
        rm -f "$loaded"
    fi
}

case "${1:-}" in
load)
    nft -c -f "$staged"
    # A rollback armed by an earlier, unconfirmed load still holds the ruleset to go back to: keep that one.
    if ! systemctl is-active --quiet "$timer.timer"; then
        if [ -f "$rules" ]; then cp -p "$rules" "$previous"; else rm -f "$previous"; fi
    fi
    systemctl stop "$timer.timer" "$timer.service" 2>/dev/null || true
    systemctl reset-failed "$timer.timer" "$timer.service" 2>/dev/null || true
    systemd-run --quiet --unit="$timer" --on-active="${2:-60}" "$0" rollback
    cp -p "$staged" "$rules.partial" && mv "$rules.partial" "$rules"
    nft -f "$rules"
    ;;
confirm)
    systemctl stop "$timer.timer" 2>/dev/null || true
    rm -f "$previous"
    record
    ;;
rollback)
    systemctl stop "$timer.timer" 2>/dev/null || true
    if [ -f "$previous" ]; then
        mv "$previous" "$rules"
        nft -f "$rules"
    else
        nft delete table $table 2>/dev/null || true
        rm -f "$rules"
    fi
    record
    echo "clawlan firewall: the new ruleset was not confirmed; the previous one is back" >&2
    ;;
*)
    echo "usage: $0 load [SECONDS] | confirm | rollback" >&2
    exit 2
    ;;
esac
