#!/usr/bin/env bash
# tls12-cbc: xrdp limited to TLS 1.2 and the suite ECDHE-RSA-AES128-SHA (AES-128-CBC with
# HMAC-SHA1); OpenSSL on both sides negotiates encrypt_then_mac (RFC 7366). A working session,
# closed by the user.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init tls12-cbc
lab_topology
lab_xrdp xrdp security_layer=tls "ssl_protocols=TLSv1.2" "tls_ciphers=ECDHE-RSA-AES128-SHA"
lab_capture_start
lab_client 20 -c 4 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect 'tls.handshake.type == 2 && tls.handshake.version == 0x0303 && tls.handshake.ciphersuite == 0xc013' \
	"the ServerHello chooses TLS 1.2 with TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
expect 'tls.handshake.type == 2 && tls.handshake.extension.type == 22' "the ServerHello agrees to encrypt_then_mac"
expect 't125' "MCS connect sequence visible after decryption"
lab_expected <<EOF2
{
  "description": "xrdp 0.9 in rdpt-server with security_layer=tls, ssl_protocols=TLSv1.2 and
    tls_ciphers=ECDHE-RSA-AES128-SHA, a fresh self-signed RSA 2048 certificate (CN
    rdp-lab-server); xfreerdp in rdpt-client connects with /sec:tls. The ServerHello chooses
    TLS 1.2 with TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (0xC013) and agrees to encrypt_then_mac
    (RFC 7366, extension 22), as OpenSSL does by default for CBC suites. The handshake
    completes, and MCS, licensing and capability exchange run inside TLS until xrdp's own
    login screen is drawn. After 4 s the lab closes xfreerdp's window the way a user does
    (WM_DELETE_WINDOW): the client sends close_notify and FIN. A working connection, nothing
    wrong; made to check decryption of a TLS 1.2 CBC suite.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "success", "cause": "none", "stage": "session", "ended_by": "client",
     "confidence": "high", "client_code": null, "remediation": "success",
     "evidence": ["x224_confirm", "fin"],
     "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "tls_version": "auto"}}
  ]
}
EOF2
