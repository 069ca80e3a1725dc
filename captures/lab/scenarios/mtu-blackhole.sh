#!/usr/bin/env bash
# mtu-blackhole: the router silently drops server packets larger than 576 bytes (no ICMP
# "fragmentation needed"), so the TLS server flight never reaches the client.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init mtu-blackhole
lab_topology
lab_xrdp xrdp security_layer=tls
# Path MTU discovery cannot help: the drop sends no ICMP, and TCP MTU probing is off in every
# lab namespace (net.ipv4.tcp_mtu_probing=0). The client advertises MSS 1460 as usual.
nft_apply "$NS_R" <<NFT
table inet rdpt_lab {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip saddr $SERVER4 tcp sport 3389 meta length > 576 drop
	}
}
NFT
lab_capture_start
lab_client 12 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
expect_none 'tls.handshake.type == 2' "no ServerHello ever arrives"
ch=$(ts -Y 'tls.handshake.type == 1' -T fields -e frame.number | head -1)
expect "ip.src == $SERVER4 && frame.number > $ch" "small server packets (ACKs) still arrive after the ClientHello" raw
expect_none "ip.src == $SERVER4 && ip.len > 576" "no server packet above 576 bytes arrives" raw
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls; on the lab router an nftables rule drops
    every packet from 198.51.100.20:3389 longer than 576 bytes, silently (no ICMP
    fragmentation-needed, as a misconfigured tunnel or firewall that eats those ICMPs would).
    The client advertises MSS 1460 and path MTU discovery gets no signal, TCP MTU probing is
    off. The TCP handshake, the X.224 exchange (19-byte Confirm) and the client's ClientHello
    work, but the server's first TLS flight (ServerHello, certificate, about 1.3 kB in one
    segment) and all its retransmissions are dropped. The client only ever sees small packets from the
    server: ACKs of its ClientHello (with SACK when it had re-sent it) and answers to its
    keep-alives. xfreerdp waits
    for the handshake with no progress until the lab's 12 s limit ends it (SIGTERM, the
    user giving up); it then closes with FIN. An MTU black hole on the path.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "mtu-blackhole", "cause": "network-blockade", "stage": "tls-handshake",
     "ended_by": "client",
     "confidence": "medium", "client_code": "0x704", "remediation": "mtu-blackhole",
     "evidence": ["client_hello", "fin"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello", "fin",
                    "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1}}
  ]
}
EOF
