#!/bin/sh
# Managed by clawlan (role pki). Writes the expiry of every certificate in PKI_DIR (the CA's, the host's, the
# probe's) for the node exporter's textfile collector:
#   certificate-expiry-metrics METRICS_DIR PKI_DIR
# The file is written beside its final name and renamed into place, so a scrape never reads half of it.
set -eu
dir=$1
pki=$2
out="$dir/clawlan_certificates.prom"
tmp="$out.$$.tmp"
trap 'rm -f "$tmp"' EXIT
{
    echo "# HELP clawlan_certificate_expiry_timestamp_seconds When the certificate expires (its notAfter), Unix time."
    echo "# TYPE clawlan_certificate_expiry_timestamp_seconds gauge"
    for cert in "$pki"/*.crt; do
        not_after=$(openssl x509 -noout -enddate -in "$cert" | cut -d= -f2-)
        echo "clawlan_certificate_expiry_timestamp_seconds{file=\"$cert\"} $(date -u -d "$not_after" +%s)"
    done
} > "$tmp"
chmod 644 "$tmp"
mv "$tmp" "$out"
