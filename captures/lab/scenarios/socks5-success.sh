#!/usr/bin/env bash
# socks5-success: xfreerdp reaches xrdp through a SOCKS5 proxy (microsocks) on the router, as
# through ssh -D or a corporate SOCKS proxy; the user closes the window after the login screen.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init socks5-success
command -v microsocks >/dev/null || die 1 "microsocks is missing (captures/lab/packages.txt)"
lab_topology
lab_xrdp xrdp security_layer=tls
PROXY_PORT=1080
lab_bg microsocks "$NS_R" -- microsocks -i "$ROUTER_C4" -p "$PROXY_PORT"
lab_wait_listen "$NS_R" "$PROXY_PORT"
SOFTWARE_SERVER="$SOFTWARE_SERVER behind microsocks $(dpkg-query -W -f '${Version}' microsocks)"
lab_capture_start
lab_client 20 -c 4 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore /proxy:socks5://"$ROUTER_C4:$PROXY_PORT"
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect_none "tcp.port == 3389" "no direct connection to the server"
expect "socks.results == 0" "the proxy answered 'succeeded'" raw
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls in rdpt-server; a SOCKS5 proxy (microsocks)
    listens on the router at $ROUTER_C4:$PROXY_PORT, as an
    ssh -D tunnel or a corporate SOCKS proxy would. xfreerdp connects with
    /proxy:socks5://$ROUTER_C4:$PROXY_PORT to $SERVER4:3389 and /sec:tls: it greets the proxy
    (SOCKS5, no authentication), asks it to CONNECT to the server's port 3389, the proxy answers
    succeeded (reply 0), and the whole RDP connection runs inside the tunnel: X.224 selects TLS,
    TLS completes, the connection sequence reaches xrdp's login screen, and after 4 s the lab
    closes the client window (FIN). The capture on the client shows only the connection to the
    proxy: a working RDP connection seen through a proxy.",
  "server": "$ROUTER_C4",
  "server_port": $PROXY_PORT,
  "attempts": [
    {"label": "success", "cause": "none", "stage": "session", "ended_by": "client",
     "confidence": "high", "client_code": null, "remediation": "success",
     "evidence": ["proxy_reply", "x224_confirm", "fin"],
     "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "proxy_request", "proxy_reply", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "tls_version": "auto",
                 "proxy": {"kind": "socks5", "target": "$SERVER4:3389", "reply": 0}}}
  ]
}
EOF
