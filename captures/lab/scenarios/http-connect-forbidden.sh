#!/usr/bin/env bash
# http-connect-forbidden: xfreerdp goes through an HTTP proxy (tinyproxy) on the router whose
# policy allows CONNECT to port 443 only; the proxy answers 403 to CONNECT 198.51.100.20:3389.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init http-connect-forbidden
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
ConnectPort 443
CONF
lab_bg tinyproxy "$NS_R" -- tinyproxy -d -c "$LAB_TMP/tinyproxy.conf"
lab_wait_listen "$NS_R" "$PROXY_PORT"
SOFTWARE_SERVER="tinyproxy $(dpkg-query -W -f '${Version}' tinyproxy) (CONNECT to port 443 only) in front of xrdp $(dpkg-query -W -f '${Version}' xrdp)"
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore /proxy:http://"$ROUTER_C4:$PROXY_PORT"
lab_capture_stop 0.5
lab_save_keys
expect_none "tcp.port == 3389" "no direct connection to the server"
expect "http.response.code == 403" "the proxy answered 403" raw
expect_none "cotp" "no X.224 in the tunnel" raw
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls runs on $SERVER4:3389, but the client reaches it
    only through an HTTP proxy (tinyproxy) on the router at $ROUTER_C4:$PROXY_PORT whose policy
    allows CONNECT to port 443 only (ConnectPort 443), as corporate proxies often do. xfreerdp
    connects with /proxy:http://$ROUTER_C4:$PROXY_PORT and sends CONNECT $SERVER4:3389; the proxy
    refuses it with HTTP 403 and never contacts the server. The proxy's policy blocked RDP: a
    network blockade by a device between client and server, seen in clear text.",
  "server": "$ROUTER_C4",
  "server_port": $PROXY_PORT,
  "attempts": [
    {"label": "proxy-refused", "cause": "network-blockade", "stage": "tcp-handshake",
    "ended_by": "middlebox", "confidence": "high", "client_code": "0x204", "remediation": "proxy-denied",
    "evidence": ["proxy_reply"], "tcp": "auto",
    "key_frames": ["syn", "syn_ack", "proxy_request", "proxy_reply", "last"],
    "details": {"proxy": {"kind": "http", "target": "$SERVER4:3389", "reply": 403}}}
  ]
}
EOF
