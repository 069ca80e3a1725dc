#!/usr/bin/env bash
# icmp-admin-prohibited: the router rejects RDP with ICMP destination unreachable, code 13.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init icmp-admin-prohibited
lab_topology
lab_xrdp xrdp security_layer=tls
nft_apply "$NS_R" <<NFT
table inet rdpt_lab {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip daddr $SERVER4 tcp dport 3389 reject with icmpx type admin-prohibited
	}
}
NFT
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect 'icmp.type == 3 && icmp.code == 13 && tcp.flags.syn == 1' "the ICMP quotes our SYN" raw
lab_expected <<EOF
{
  "description": "xrdp runs on the server, but the lab router's forward chain rejects TCP to
    198.51.100.20:3389 with nftables 'reject with icmpx type admin-prohibited': every SYN is
    answered by ICMP destination unreachable, communication administratively prohibited
    (type 3 code 13) from the router's address 192.0.2.1, quoting the SYN. Linux does not
    abort the connect on the first ICMP here: the SYN is retransmitted after 1 s and
    rejected again, then xfreerdp's connect fails (ERRCONNECT_CONNECT_TRANSPORT_FAILED) and
    FreeRDP 2 retries once from a new port with the same result. A network blockade by a
    firewall between client and server.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "icmp-unreachable", "cause": "network-blockade", "stage": "tcp-handshake",
     "ended_by": "middlebox",
     "confidence": "high", "client_code": "0x204", "remediation": "icmp-admin",
     "evidence": ["syn", "icmp"], "tcp": {"outcome": "icmp-unreachable", "established": false},
     "key_frames": ["syn", "icmp", "last"],
     "details": {"icmp": {"type": 3, "code": 13, "from": "$ROUTER_C4"}}},
    {"label": "icmp-unreachable", "cause": "network-blockade", "stage": "tcp-handshake",
     "ended_by": "middlebox",
     "confidence": "high", "client_code": "0x204", "remediation": "icmp-admin",
     "evidence": ["syn", "icmp"], "tcp": {"outcome": "icmp-unreachable", "established": false},
     "key_frames": ["syn", "icmp", "last"],
     "details": {"icmp": {"type": 3, "code": 13, "from": "$ROUTER_C4"}}}
  ]
}
EOF
