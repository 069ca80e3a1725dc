#!/usr/bin/env bash
# icmp-host-unreachable: DNS sends the client to an address where no host lives; the router
# answers ICMP host unreachable.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init icmp-host-unreachable
lab_topology dns
DEAD=198.51.100.99
lab_dns "rdp.corp.example,$DEAD"
SOFTWARE_SERVER="none (no host at $DEAD; dnsmasq $(dpkg-query -W -f '${Version}' dnsmasq-base) answers the name)"
lab_capture_start
lab_client 20 -b "$CLIENT_RESOLV" -- /v:rdp.corp.example /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect 'dns.a == 198.51.100.99' "the DNS answer points at the dead address" raw
expect 'icmp.type == 3 && icmp.code == 1 && tcp.flags.syn == 1' "the ICMP quotes our SYN" raw
lab_expected <<EOF
{
  "description": "The client connects by name: /v:rdp.corp.example. The lab's DNS server
    (dnsmasq on 203.0.113.53, authoritative for corp.example) answers with 198.51.100.99, an
    address in the server subnet where no host lives (a stale or wrong DNS record; the real
    server is 198.51.100.20). The A and AAAA queries and answers (no AAAA record) are in the
    capture. The SYNs go to 198.51.100.99; the router's ARP for it fails, and after about 3 s
    it answers each queued SYN with ICMP destination unreachable, host unreachable (type 3
    code 1) from 192.0.2.1. xfreerdp fails (ERRCONNECT_CONNECT_TRANSPORT_FAILED), resolves
    the name again and retries once with the same result. On the wire this is an ICMP
    unreachable, but the true cause is name resolution: DNS points at a dead address.",
  "server": "$DEAD",
  "server_port": 3389,
  "attempts": [
    {"label": "icmp-unreachable", "cause": "resolution-mismatch", "stage": "tcp-handshake",
     "ended_by": "middlebox",
     "confidence": "high", "client_code": "0x204", "remediation": "icmp-nohost",
     "evidence": ["syn", "icmp"], "tcp": {"outcome": "icmp-unreachable", "established": false},
     "key_frames": ["dns_query", "dns_response", "syn", "icmp", "last"],
     "details": {"icmp": {"type": 3, "code": 1, "from": "$ROUTER_C4"},
                 "dns": {"name": "rdp.corp.example", "address": "$DEAD"}}},
    {"label": "icmp-unreachable", "cause": "resolution-mismatch", "stage": "tcp-handshake",
     "ended_by": "middlebox",
     "confidence": "high", "client_code": "0x204", "remediation": "icmp-nohost",
     "evidence": ["syn", "icmp"], "tcp": {"outcome": "icmp-unreachable", "established": false},
     "key_frames": ["dns_query", "dns_response", "syn", "icmp", "last"],
     "details": {"icmp": {"type": 3, "code": 1, "from": "$ROUTER_C4"},
                 "dns": {"name": "rdp.corp.example", "address": "$DEAD"}}}
  ]
}
EOF
