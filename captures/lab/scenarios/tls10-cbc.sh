#!/usr/bin/env bash
# tls10-cbc: xrdp limited to TLS 1.0 and ECDHE-RSA-AES256-SHA at OpenSSL security level 0;
# xfreerdp with /tls-seclevel:0 and an OpenSSL configuration that turns encrypt_then_mac off,
# so records are MAC-then-encrypt with TLS 1.0's chained IV. A working session, closed by the user.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init tls10-cbc
lab_topology
lab_xrdp xrdp security_layer=tls "ssl_protocols=TLSv1" "tls_ciphers=ECDHE-RSA-AES256-SHA:@SECLEVEL=0"
lab_client_openssl "Options = -EncryptThenMac"
lab_capture_start
lab_client 20 -c 4 -e OPENSSL_CONF="$CLIENT_OPENSSL_CNF" -- \
	/v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore /tls-seclevel:0
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect 'tls.handshake.type == 2 && tls.handshake.version == 0x0301 && tls.handshake.ciphersuite == 0xc014' \
	"the ServerHello chooses TLS 1.0 with TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"
expect_none 'tls.handshake.type == 1 && tls.handshake.extension.type == 22' "the ClientHello does not offer encrypt_then_mac"
expect 't125' "MCS connect sequence visible after decryption"
lab_expected <<EOF2
{
  "description": "xrdp 0.9 in rdpt-server with security_layer=tls, ssl_protocols=TLSv1 and
    tls_ciphers=ECDHE-RSA-AES256-SHA:@SECLEVEL=0 (OpenSSL 3 refuses TLS 1.0 above security
    level 0), a fresh self-signed RSA 2048 certificate (CN rdp-lab-server); xfreerdp in
    rdpt-client connects with /sec:tls /tls-seclevel:0 and an OpenSSL configuration
    (OPENSSL_CONF) that allows TLS 1.0 and turns encrypt_then_mac off. The ServerHello chooses
    TLS 1.0 with TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA (0xC014); records are MAC-then-encrypt
    (HMAC-SHA1, then AES-256-CBC) with TLS 1.0's implicit IV, each record's IV the last
    ciphertext block of the one before. The handshake completes, and MCS, licensing and
    capability exchange run inside TLS until xrdp's own login screen is drawn. After 4 s the
    lab closes xfreerdp's window the way a user does (WM_DELETE_WINDOW): the client sends
    close_notify and FIN. A working connection on an outdated TLS version; made to check
    decryption of TLS 1.0.",
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
