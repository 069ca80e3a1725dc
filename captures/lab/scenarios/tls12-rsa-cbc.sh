#!/usr/bin/env bash
# tls12-rsa-cbc: xrdp limited to TLS 1.2 and AES128-SHA (TLS_RSA_WITH_AES_128_CBC_SHA: RSA key
# exchange, no forward secrecy); xfreerdp with an OpenSSL configuration that turns encrypt_then_mac
# off (MAC-then-encrypt with an explicit IV). The server's throwaway lab key is kept beside the
# capture. A working session, closed by the user.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init tls12-rsa-cbc
lab_topology
lab_xrdp xrdp security_layer=tls "ssl_protocols=TLSv1.2" "tls_ciphers=AES128-SHA"
lab_client_openssl "Options = -EncryptThenMac"
lab_capture_start
lab_client 20 -c 4 -e OPENSSL_CONF="$CLIENT_OPENSSL_CNF" -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect 'tls.handshake.type == 2 && tls.handshake.version == 0x0303 && tls.handshake.ciphersuite == 0x002f' \
	"the ServerHello chooses TLS 1.2 with TLS_RSA_WITH_AES_128_CBC_SHA"
expect_none 'tls.handshake.type == 1 && tls.handshake.extension.type == 22' "the ClientHello does not offer encrypt_then_mac"
# The server's key alone decrypts it too (RSA key exchange), so it is kept for tools that take one.
cp "$LAB_TMP/xrdp/cert/key.pem" "$STAGE/$SCENARIO.server-key.pem"
[[ $(tshark -n -r "$PCAP" -d tcp.port==3389,tls -o "uat:rsa_keys:\"$STAGE/$SCENARIO.server-key.pem\",\"\"" -Y 'tls.handshake.type == 20' -T fields -e frame.number 2>/dev/null | wc -l) -gt 0 ]] ||
	die 1 "sanity check failed: the server's RSA key does not decrypt the session"
expect 't125' "MCS connect sequence visible after decryption"
lab_expected <<EOF2
{
  "description": "xrdp 0.9 in rdpt-server with security_layer=tls, ssl_protocols=TLSv1.2 and
    tls_ciphers=AES128-SHA, a fresh self-signed RSA 2048 certificate (CN rdp-lab-server) whose
    throwaway private key is committed as tls12-rsa-cbc.server-key.pem; xfreerdp in rdpt-client
    connects with /sec:tls and an OpenSSL configuration (OPENSSL_CONF) that turns
    encrypt_then_mac off. The ServerHello chooses TLS 1.2 with TLS_RSA_WITH_AES_128_CBC_SHA
    (0x002F): RSA key exchange, the pre-master secret encrypted to the server's key in the
    ClientKeyExchange, so that key alone also decrypts the session (tshark checks it does).
    Records are MAC-then-encrypt: each carries its own IV, then AES-128-CBC over content, HMAC-
    SHA1 and padding. The handshake completes, and MCS, licensing and capability exchange run
    inside TLS until xrdp's own login screen is drawn. After 4 s the lab closes xfreerdp's
    window the way a user does (WM_DELETE_WINDOW): the client sends close_notify and FIN. A
    working connection with a suite without forward secrecy; made to check decryption of TLS 1.2
    MAC-then-encrypt and RSA key exchange.",
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
