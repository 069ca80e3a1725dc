#!/usr/bin/env bash
# syn-dropped: the server's own firewall (nftables input chain) silently drops SYNs to 3389.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init syn-dropped
lab_topology
lab_xrdp xrdp security_layer=tls
nft_apply "$NS_S" <<'NFT'
table inet rdpt_lab {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 3389 drop
	}
}
NFT
lab_capture_start
lab_client 25 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect_none 'ip.src == 198.51.100.20 || icmp' "no answer at all from the server side"
lab_expected <<EOF
{
  "description": "xrdp listens on 198.51.100.20:3389, but an nftables rule in the server's
    input chain (tcp dport 3389 drop) discards every SYN without an answer, the way a host
    firewall with a drop policy does. The client's SYN is retransmitted with exponential
    back-off (about 1, 2, 4 s apart) and nothing ever comes back: no SYN-ACK, no RST, no ICMP.
    xfreerdp gives up by itself after its 15 s TCP connect timeout with
    ERRCONNECT_CONNECT_FAILED. A network blockade at the server: the packets reach it but a
    firewall swallows them.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "syn-unanswered", "cause": "network-blockade", "stage": "tcp-handshake",
     "ended_by": "none",
     "confidence": "high", "client_code": "0x204", "remediation": "syn-unanswered",
     "evidence": ["syn", "last"], "tcp": {"outcome": "syn-unanswered", "established": false},
     "key_frames": ["syn", "last"], "details": {}}
  ]
}
EOF
