#!/usr/bin/env bash
# background-traffic: a successful RDP session by name, in the middle of unrelated DNS, HTTP and
# ICMP traffic from the same client.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init background-traffic
lab_topology dns
lab_dns "rdp.corp.example,$SERVER4" "intranet.corp.example,$WEB4" "wiki.corp.example,$WEB4"
mkdir -p "$LAB_TMP/www"
echo "<html><body>corp intranet</body></html>" >"$LAB_TMP/www/index.html"
lab_bg web "$NS_D" -- /usr/bin/python3 -m http.server --directory "$LAB_TMP/www" --bind "$WEB4" 80
lab_wait_listen "$NS_D" 80
lab_xrdp xrdp security_layer=tls
lab_capture_start
# the client's other activity: web requests by name, lookups, pings (bounded: 14 rounds)
lab_bg background "$NS_C" -b "$CLIENT_RESOLV" -- /bin/sh -c '
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do
		curl -s -m 2 -o /dev/null http://intranet.corp.example/
		getent hosts wiki.corp.example >/dev/null
		ping -c 1 -W 1 -q 192.0.2.1 >/dev/null
		sleep 0.6
	done'
sleep 2.5
lab_client 20 -c 4 -b "$CLIENT_RESOLV" -- /v:rdp.corp.example /u:"$LAB_USER" /sec:tls /cert:ignore
for _ in $(seq 1 100); do kill -0 "${LAB_PIDS[background]}" 2>/dev/null || break; sleep 0.1; done
lab_stop background
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect 'http.request && frame.number < 10' "HTTP before the RDP attempt" raw
expect 'icmp.type == 8' "pings in the capture" raw
lab_expected <<EOF
{
  "description": "A client that is busy with other things while it connects to RDP. The
    capture runs for about 10 s; all along the client fetches http://intranet.corp.example/
    (a web server on 203.0.113.80), looks up wiki.corp.example, and pings its router, every
    second or so, each with its DNS queries to the lab's dnsmasq (203.0.113.53). In the
    middle, xfreerdp connects by name to rdp.corp.example (DNS A answer 198.51.100.20) with
    /sec:tls against xrdp (security_layer=tls): TLS 1.3, the connection sequence up to
    xrdp's login screen, and the lab closes the window after 4 s. One RDP attempt, a
    success; the HTTP, DNS and ICMP traffic around it is not an RDP attempt and is not
    listed.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "success", "cause": "none", "stage": "session", "ended_by": "client",
     "confidence": "high", "client_code": null, "remediation": "success",
     "evidence": ["x224_confirm", "fin"],
     "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["dns_query", "dns_response", "syn", "syn_ack", "x224_request",
                    "x224_confirm", "client_hello", "server_hello", "fin",
                    "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "tls_version": "auto",
                 "dns": {"name": "rdp.corp.example", "address": "$SERVER4"}}}
  ]
}
EOF
