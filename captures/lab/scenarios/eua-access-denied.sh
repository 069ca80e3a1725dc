#!/usr/bin/env bash
# eua-access-denied: HYBRID_EX against the purpose-built peer (peers/rdp_peer.py), with aardwolf
# (PyPI, installed by install-pyclient) as the client, since xfreerdp 2.11.7 cannot use
# HYBRID_EX: NLA succeeds, then the server's Early User Authorization Result is ACCESS_DENIED
# (MS-RDPBCGR 2.2.10.2) and it closes.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init eua-access-denied
lab_topology
lab_peer peer --refuse eua-denied
lab_capture_start
lab_pyclient 15 --timeout 10
lab_capture_stop 0.5
lab_save_keys
grep -qx 'Early User Authorization Result: 0x00000005' "$CLIENT_LOG" ||
	die 1 "aardwolf did not read an Early User Authorization Result ACCESS_DENIED (see $CLIENT_LOG)"
[[ $CLIENT_RC -eq 1 ]] || die 1 "aardwolf's exit status is $CLIENT_RC, not 1 (an error)"
expect 'rdp.negReq.requestedProtocols == 0xb' "aardwolf offers standard security, TLS, CredSSP and HYBRID_EX (0xB)" raw
expect 'rdp.negReq.selectedProtocol == 0x8' "the server selects HYBRID_EX (0x8)" raw
lab_check_decrypt
expect 'ntlmssp.messagetype == 3 && ntlmssp.auth.username == "alice"' "NTLM AUTHENTICATE for alice visible after decryption"
expect 'credssp.pubKeyAuth && ip.src == 198.51.100.20' "the server's pubKeyAuth: NLA succeeded"
expect 'credssp.authInfo' "the client delegated its credentials"
# tshark 4.0 has no dissector for the result: it hands the 4 decrypted bytes to TPKT.
EUA='tpkt.continuation_data == 05:00:00:00 && ip.src == 198.51.100.20'
expect "$EUA" "the server's Early User Authorization Result ACCESS_DENIED (05 00 00 00)"
auth_info=$(ts -Y 'credssp.authInfo' -T fields -e frame.number | head -1)
eua=$(ts -Y "$EUA" -T fields -e frame.number | head -1)
[[ $eua -gt $auth_info ]] || die 1 "sanity check failed: the result (frame $eua) follows authInfo (frame $auth_info)"
expect_none "ip.src == 198.51.100.20 && tls.app_data && frame.number > $eua" "nothing from the server inside TLS after the result but its close_notify"
expect_none 't125' "no MCS after the result"
lab_expected <<EOF
{
  "description": "The purpose-built peer rdp_peer.py (see purpose_built_peer) in rdpt-server selects HYBRID_EX (0x8) for aardwolf, a third-party Python RDP client (requested 0xB: standard security, TLS, CredSSP and HYBRID_EX), run by captures/lab/aardwolf_client.py as alice with the right password. NLA succeeds: aardwolf wraps NTLM in SPNEGO, the peer verifies the NTLMv2 response and the mechListMIC and sends its pubKeyAuth, and the client delegates its credentials (authInfo). The peer then refuses the user as a Windows server does for an account without the right to log on through Remote Desktop: its Early User Authorization Result is ACCESS_DENIED (0x00000005, MS-RDPBCGR 2.2.10.2), 4 bytes in one TLS record; no MCS follows. aardwolf reads the result and reports it, then closes with a FIN at once (no close_notify); the peer's close_notify comes 0.2 s later and the client's socket answers it with an RST. The server's refusal ended the attempt. FACTS.md names no client code of its own for this result: client_code is the code rdptriage gives a server-ended setup (0x904/0x7, the client's guess when no Set Error Info explains a close). Decrypt with the key log to see CredSSP and the result (tshark shows the 4 bytes as TPKT continuation data). The server stated that it does not accept this user, right after a successful NLA.",
  "verdict_needs_keys": true,
  "purpose_built_peer": "captures/lab/peers/rdp_peer.py: a Python 3 (standard library) RDP server written for the lab, because neither xrdp 0.9.21 nor freerdp-shadow-cli 2.11.7 selects HYBRID_EX or sends an Early User Authorization Result. It follows MS-RDPBCGR, MS-CSSP, MS-SPNG and MS-NLMP byte for byte only as far as this refusal needs: X.224 Connection Confirm selecting HYBRID_EX, TLS (Python ssl, OpenSSL 3), CredSSP version 6 with NTLMv2 inside SPNEGO checked against the lab password (NegTokenResp with the CHALLENGE, AV pairs and timestamp, NTProofStr, key exchange, the client's mechListMIC, the SHA-256 ClientServerHashMagic/ServerClientHashMagic pubKeyAuth binding, sealing with RC4), then the 4-byte Early User Authorization Result. Its last CredSSP answer carries pubKeyAuth without the SPNEGO accept-completed and mechListMIC Windows adds. It is not a Windows server; only the refusal's bytes follow Windows' documented behaviour.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "early-disconnect", "cause": "host-not-accepting", "stage": "credssp",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x904/0x7", "remediation": "logon-not-granted",
     "evidence": [], "tcp": "auto",
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 11, "selected_protocol": 8, "tls_version": "auto"}}
  ]
}
EOF
