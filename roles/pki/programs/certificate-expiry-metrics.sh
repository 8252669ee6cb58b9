#!/bin/sh
# Managed by clawlan (role pki). Writes the expiry of every certificate in PKI_DIR (the CA's, the host's, the
# probe's) and the next update of each revocation list in PKI_DIR/crl.pem (one per trusted CA) for the node exporter's
# textfile collector:
#   certificate-expiry-metrics METRICS_DIR PKI_DIR
# The file is written beside its final name and renamed into place, so a scrape never reads half of it.
set -eu
dir=$1
pki=$2
out="$dir/clawlan_certificates.prom"
tmp="$out.$$.tmp"
lists=$(mktemp -d)
trap 'rm -f "$tmp"; rm -rf "$lists"' EXIT
{
    echo "# HELP clawlan_certificate_expiry_timestamp_seconds When the certificate expires (its notAfter), Unix time."
    echo "# TYPE clawlan_certificate_expiry_timestamp_seconds gauge"
    for cert in "$pki"/*.crt; do
        not_after=$(openssl x509 -noout -enddate -in "$cert" | cut -d= -f2-)
        echo "clawlan_certificate_expiry_timestamp_seconds{file=\"$cert\"} $(date -u -d "$not_after" +%s)"
    done
    echo "# HELP clawlan_revocation_list_next_update_timestamp_seconds When the revocation list runs out, Unix time."
    echo "# TYPE clawlan_revocation_list_next_update_timestamp_seconds gauge"
    if [ -s "$pki/crl.pem" ]; then
        csplit --quiet --elide-empty-files --prefix "$lists/crl" "$pki/crl.pem" '/-----BEGIN X509 CRL-----/' '{*}'
        number=0
        for crl in "$lists"/crl*; do
            number=$((number + 1))
            next_update=$(openssl crl -noout -nextupdate -in "$crl" | cut -d= -f2-)
            echo "clawlan_revocation_list_next_update_timestamp_seconds{file=\"$pki/crl.pem\",list=\"$number\"}" \
                "$(date -u -d "$next_update" +%s)"
        done
    fi
} > "$tmp"
chmod 644 "$tmp"
mv "$tmp" "$out"
