#!/usr/bin/env bash
# license-no-license-server: TLS security against the purpose-built peer (peers/rdp_peer.py):
# MCS and the Client Info PDU, then a Licensing Error Message ERR_NO_LICENSE_SERVER with
# ST_TOTAL_ABORT and Disconnect Provider Ultimatum.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init license-no-license-server
lab_topology
lab_peer peer --refuse license-error --status 0x6
lab_capture_start
lab_client 12 -- /v:"$SERVER4" /u:"$LAB_USER" /p:"$LAB_PASS" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
lab_check_decrypt
expect 't125.connect_response_element' "MCS Connect Response visible after decryption"
expect 'rdp.errorCode == 6 && rdp.stateTransition == 1' "licensing error ERR_NO_LICENSE_SERVER"
expect 't124.DomainMCSPDU == 8' "MCS Disconnect Provider Ultimatum"
lab_expected <<EOF
{
  "description": "The purpose-built peer rdp_peer.py (see purpose_built_peer) in rdpt-server selects TLS (0x1) for xfreerdp /sec:tls. After TLS, MCS Connect Initial and Response, Erect Domain, Attach User, Channel Joins and the Client Info PDU; the peer then answers licensing with a Licensing Error Message ERR_NO_LICENSE_SERVER (0x6) and ST_TOTAL_ABORT (MS-RDPBCGR 2.2.1.12.1.3, MS-RDPELE), then MCS Disconnect Provider Ultimatum, close_notify and FIN. xfreerdp logs 'license connection sequence aborted', then ERRCONNECT_CONNECT_TRANSPORT_FAILED, and tries once more the same way: two identical attempts. No Set Error Info is sent, so the Windows client's code is the licensing failure 0x808 (FACTS.md section 1; judged: FACTS.md lists 0x808 for licensing failures but does not say which code a licensing error message without Set Error Info gives). Decrypt with the key log to see the licensing PDU. A licensing refusal stated by the server.",
  "verdict_needs_keys": true,
  "purpose_built_peer": "captures/lab/peers/rdp_peer.py: a Python 3 (standard library) RDP server written for the lab, because neither xrdp 0.9.21 nor freerdp-shadow-cli 2.11.7 sends a licensing error. It follows MS-RDPBCGR, MS-CSSP and MS-NLMP byte for byte only as far as this refusal needs: X.224 Connection Confirm, TLS (Python ssl, OpenSSL 3), MCS Connect Response with a GCC Conference Create Response (SC_CORE, SC_SECURITY without RDP encryption, SC_NET with one channel per requested static channel), Attach User and Channel Join Confirms, the Licensing Error Message and Disconnect Provider Ultimatum. It is not a Windows server; only the refusal's bytes follow Windows' documented behaviour.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "early-disconnect", "cause": "host-not-accepting", "stage": "mcs-connect",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x808", "remediation": "server-refused",
     "evidence": [], "tcp": "auto",
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "tls_version": "auto"}},
    {"label": "early-disconnect", "cause": "host-not-accepting", "stage": "mcs-connect",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x808", "remediation": "server-refused",
     "evidence": [], "tcp": "auto",
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "tls_version": "auto"}}
  ]
}
EOF
