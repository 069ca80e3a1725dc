#!/usr/bin/env bash
# reset-injected: the router answers the client's TLS ClientHello with a forged TCP RST
# (nftables 'reject with tcp reset' on the ClientHello payload); its TTL gives it away.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init reset-injected
lab_topology
lab_xrdp xrdp security_layer=tls
# @ih = the TCP payload: TLS record type 22 (handshake), version 3.x, handshake type 1 (ClientHello)
nft_apply "$NS_R" <<NFT
table inet rdpt_lab {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip daddr $SERVER4 tcp dport 3389 @ih,0,16 0x1603 @ih,40,8 0x01 reject with tcp reset
	}
}
NFT
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
expect 'tcp.flags.reset == 1 && ip.ttl == 64' "the RST comes with the router's TTL 64" raw
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls works, but the lab router acts like an IPS or
    TLS-blocking middlebox: an nftables rule in its forward chain matches the client's TLS
    ClientHello by payload (record type 22, handshake type 1) and rejects it with a TCP reset.
    The ClientHello never reaches the server; the router sends an RST to the client in the
    server's name. It has IP TTL 64 (sent by the router itself, no hop) while the server's own
    packets arrive with TTL 63 (64 minus the router hop). The server never learns of it (its
    connection stays open). xfreerdp reports ERRCONNECT_TLS_CONNECT_FAILED. A reset injected
    by a middlebox, mid-handshake.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "reset-by-middlebox", "cause": "network-blockade", "stage": "tls-handshake",
     "ended_by": "middlebox",
     "confidence": "high", "client_code": "0x904/0x7", "remediation": "reset-by-middlebox",
     "evidence": ["rst"], "tcp": {"outcome": "reset", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello", "rst",
                    "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "rst_ttl": 64,
                 "server_ttl": 63}}
  ]
}
EOF
