#!/usr/bin/env bash
# non-rdp-service: an HTTP server listens on 3389; the client's Connection Request gets an
# HTML error page and a close.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init non-rdp-service
lab_topology
mkdir -p "$LAB_TMP/www"
echo "intranet test page" >"$LAB_TMP/www/index.html"
lab_bg http "$NS_S" -- /usr/bin/python3 -m http.server --directory "$LAB_TMP/www" --bind "$SERVER4" 3389
lab_wait_listen "$NS_S" 3389
SOFTWARE_SERVER="python3 -m http.server (Python $(/usr/bin/python3 -c 'import platform; print(platform.python_version())'))"
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
expect 'tcp.srcport == 3389 && frame contains "Error code: 400"' "HTML error page on the RDP port" raw
lab_expected <<EOF
{
  "description": "Not an RDP server but a web server listens on 198.51.100.20:3389
    (python3 -m http.server 3389, e.g. a port mapped to the wrong service). TCP is
    accepted; xfreerdp sends its X.224 Connection Request (TPKT bytes); the HTTP server takes
    the first line (TPKT header, X.224 bytes, 'Cookie: mstshash=alice') for an HTTP/0.9
    request of an unknown type and answers as HTTP/0.9 does: a bare HTML error page
    ('Error code: 400', 'Bad HTTP/0.9 request type'), without any status line or headers,
    then closes (FIN). xfreerdp cannot parse that as TPKT ('tpdu length ... >
    tpkt header length') and reports a protocol security negotiation failure. The service
    on the port is not RDP.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "non-rdp-service", "cause": "resolution-mismatch", "stage": "x224-negotiation",
     "ended_by": "server",
     "confidence": "high", "client_code": "protocol", "remediation": "non-rdp-service",
     "evidence": ["x224_request"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "fin", "last"],
     "details": {"service": "HTTP (Python http.server, answering as HTTP/0.9)"}}
  ]
}
EOF
