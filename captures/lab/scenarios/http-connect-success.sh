#!/usr/bin/env bash
# http-connect-success: xfreerdp reaches xrdp through an HTTP proxy (tinyproxy) on the router
# that allows CONNECT to port 3389; the user closes the window after the login screen.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init http-connect-success
command -v tinyproxy >/dev/null || die 1 "tinyproxy is missing (captures/lab/packages.txt)"
lab_topology
lab_xrdp xrdp security_layer=tls
PROXY_PORT=3128
cat >"$LAB_TMP/tinyproxy.conf" <<CONF
User root
Group root
Port $PROXY_PORT
Listen $ROUTER_C4
Timeout 30
LogLevel Info
MaxClients 10
Allow 192.0.2.0/24
ConnectPort 3389
CONF
lab_bg tinyproxy "$NS_R" -- tinyproxy -d -c "$LAB_TMP/tinyproxy.conf"
lab_wait_listen "$NS_R" "$PROXY_PORT"
SOFTWARE_SERVER="tinyproxy $(dpkg-query -W -f '${Version}' tinyproxy) (CONNECT to port 3389 allowed) in front of xrdp $(dpkg-query -W -f '${Version}' xrdp)"
lab_capture_start
lab_client 20 -c 4 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore /proxy:http://"$ROUTER_C4:$PROXY_PORT"
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect_none "tcp.port == 3389" "no direct connection to the server"
expect "http.response.code == 200" "the proxy answered 200" raw
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls runs on $SERVER4:3389; the client reaches it through
    an HTTP proxy (tinyproxy) on the router at $ROUTER_C4:$PROXY_PORT that allows CONNECT to port
    3389 (ConnectPort 3389). xfreerdp connects with /proxy:http://$ROUTER_C4:$PROXY_PORT and /sec:tls,
    sends CONNECT $SERVER4:3389, the proxy answers 200 and relays: X.224 selects TLS, TLS
    completes, the connection sequence reaches xrdp's login screen, and after 4 s the lab closes
    the client window. A working RDP connection through an HTTP proxy; the capture shows only
    the connection to the proxy.",
  "server": "$ROUTER_C4",
  "server_port": $PROXY_PORT,
  "attempts": [
    {"label": "success", "cause": "none", "stage": "session", "ended_by": "client",
     "confidence": "high", "client_code": null, "remediation": "success",
     "evidence": ["proxy_reply", "x224_confirm"],
     "tcp": "auto",
     "key_frames": ["syn", "syn_ack", "proxy_request", "proxy_reply", "x224_request", "x224_confirm",
                    "client_hello", "server_hello", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "tls_version": "auto",
                 "proxy": {"kind": "http", "target": "$SERVER4:3389", "reply": 200}}}
  ]
}
EOF
