#!/usr/bin/env bash
# close-after-clienthello: xrdp's certificate and private key do not match; after the Connection
# Confirm it cannot set up TLS and resets the connection when the ClientHello is in, no alert.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init close-after-clienthello
lab_topology
lab_cert "$LAB_TMP/xrdp/cert"
lab_cert "$LAB_TMP/other-cert"
cp "$LAB_TMP/other-cert/key.pem" "$LAB_TMP/xrdp/cert/key.pem"   # a valid key, of another cert
lab_xrdp xrdp security_layer=tls
# xrdp loads the key only after sending the Connection Confirm, racing the client's ClientHello,
# and the client reacts to xrdp's 9-byte PDU with FIN, racing xrdp's close. Prefer the usual
# order (ClientHello in, then the server's RST before any client FIN; at most 3 tries), and
# accept the other order of FIN and RST after that: the TCP facts are then taken from the wire.
for try in 1 2 3; do
	CLIENT_ERRORS=() CLIENT_CMDS=()
	lab_capture_start
	lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
	lab_capture_stop 0.5
	ch=$(ts -Y 'tls.handshake.type == 1' -T fields -e frame.number | head -1)
	rst=$(tsr -Y "tcp.flags.reset == 1 && ip.src == $SERVER4" -T fields -e frame.number | head -1)
	fin=$(tsr -Y "tcp.flags.fin == 1 && ip.src == $CLIENT4" -T fields -e frame.number | head -1)
	if [[ -n $ch && -n $rst && $ch -lt $rst ]]; then
		if [[ -z $fin || $rst -lt $fin ]]; then break; fi
		[[ $try -lt 3 ]] || break
		log "try $try: the client's FIN came before the server's RST; again"
	else
		log "try $try: the server's close came before the ClientHello; again"
		[[ $try -lt 3 ]] || die 1 "the ClientHello never arrived before the server's close"
	fi
done
lab_save_keys
expect_none 'tls.alert_message' "no TLS alert"
expect_none 'tls.handshake.type == 2' "no ServerHello"
grep -q 'do not match' "$LAB_TMP/xrdp/log/xrdp.log" || die 1 "xrdp did not report the key mismatch"
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls whose key_file holds a valid RSA key that
    belongs to another certificate (the key does not match cert.pem), a real-world
    misconfiguration after a certificate renewal, akin to Windows' unusable certificate
    private key. Negotiation goes normally: X.224 selects TLS. xrdp loads certificate and key
    only when TLS starts, finds they do not match, and gives up without any TLS answer: no
    ServerHello, no alert. It writes a 9-byte X.224 Data PDU (MCS Disconnect Provider
    Ultimatum) in clear and closes the socket with the client's unread ClientHello in it, so
    the kernel sends RST (TTL 63, the server itself); when the machine is busy the client's
    FIN, its reaction to that PDU, can come just before the RST. xfreerdp reports
    ERRCONNECT_TLS_CONNECT_FAILED. The TLS layer of the server failed right after the
    ClientHello.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "tls-rejected", "cause": "tls-credssp", "stage": "tls-handshake",
     "ended_by": "server",
     "confidence": "medium", "client_code": "0x904/0x7", "remediation": "tls-rejected",
     "evidence": ["client_hello", "rst"], "tcp": $( [[ -z $fin || $rst -lt $fin ]] && echo '{"outcome": "reset", "established": true}' || echo '"auto"'),
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello", "rst",
                    "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "rst_ttl": 63,
                 "server_ttl": 63}}
  ]
}
EOF
