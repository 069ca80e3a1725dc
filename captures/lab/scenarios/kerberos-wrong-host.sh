#!/usr/bin/env bash
# kerberos-wrong-host: the client connects by a name whose DNS record points at another server.
# aardwolf (Kerberos through SPNEGO, which FreeRDP 2.11.7 cannot send) gets a ticket for
# termsrv/rdp-old.corp.example from the lab's KDC; the server at that address is the
# purpose-built peer, whose own name is rdp.corp.example: it refuses the ticket made for another
# host's key the way a Windows server does (KRB-ERROR KRB_AP_ERR_MODIFIED inside SPNEGO, and a
# CredSSP errorCode).
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init kerberos-wrong-host
lab_topology dns
# The stale record: rdp-old's name now leads to the new server's address.
lab_dns "rdp-old.corp.example,$SERVER4" "rdp.corp.example,$SERVER4"
lab_krb_kdc termsrv/rdp.corp.example termsrv/rdp-old.corp.example
lab_peer peer --cn rdp.corp.example --kerberos-own-name rdp.corp.example --refuse credssp-error --status 0x80090322
lab_capture_start
lab_aardwolf_kerberos 20 rdp-old.corp.example
lab_capture_stop 0.5
lab_save_keys
lab_check_decrypt
expect 'dns.qry.name == "rdp-old.corp.example" && dns.a == 198.51.100.20' "DNS answers rdp-old.corp.example with the server's address"
expect 'kerberos.msg_type == 13 && kerberos.SNameString == "rdp-old.corp.example"' "the KDC issued the client a ticket for termsrv/rdp-old.corp.example (TGS-REP)"
expect 'credssp && spnego.MechType == 1.2.840.48018.1.2.2' "the client's CredSSP token is SPNEGO offering Kerberos"
expect 'credssp && kerberos.msg_type == 14 && kerberos.realm == "CORP.EXAMPLE" && kerberos.SNameString == "rdp-old.corp.example" && ip.src == 192.0.2.10' \
	"the client's AP-REQ inside CredSSP names termsrv/rdp-old.corp.example in CORP.EXAMPLE"
expect 'credssp && kerberos.msg_type == 30 && kerberos.error_code == 41 && spnego.negResult == 1 && ip.src == 198.51.100.20' \
	"the server answers with KRB-ERROR KRB_AP_ERR_MODIFIED in a SPNEGO accept-incomplete"
expect 'credssp.errorCode == -2146893022' "the server's TSRequest carries errorCode 0x80090322 SEC_E_WRONG_PRINCIPAL"
expect_none 'ntlmssp' "no NTLM: Kerberos only"
expect_none 'credssp.pubKeyAuth' "no pubKeyAuth: the server refused before any"
expect_none 'credssp.authInfo' "no credentials delegated"
expect_none 't125' "no MCS after CredSSP"
lab_expected <<EOF
{
  "description": "A stale DNS record: dnsmasq in rdpt-dns answers rdp-old.corp.example with 198.51.100.20, the address of another server, the purpose-built peer rdp_peer.py (see purpose_built_peer) in rdpt-server, whose own name is rdp.corp.example (its certificate's CN). An MIT KDC (krb5kdc 1.20) in rdpt-dns serves the realm CORP.EXAMPLE with alice and the principals termsrv/rdp.corp.example and termsrv/rdp-old.corp.example (random keys). On the client, MIT kinit and kvno get alice's TGT and the ticket for termsrv/rdp-old.corp.example (AS and TGS exchanges in the capture, in clear), as a logged-on user's client would hold them; then aardwolf 0.2.16 (Python, PyPI; its CredSSP speaks Kerberos through minikerberos) resolves rdp-old.corp.example, offers 0xB and gets CredSSP (0x2), and after TLS sends a TSRequest whose negoToken is SPNEGO offering Kerberos with an AP-REQ for termsrv/rdp-old.corp.example in CORP.EXAMPLE. The ticket was made with rdp-old's key, so a Windows server at this address cannot decrypt it: the peer reads the ticket's clear-text sname, finds it is not its own TERMSRV/rdp.corp.example, and answers with a TSRequest (version 6) holding a SPNEGO NegTokenResp (negState accept-incomplete) with a KRB-ERROR KRB_AP_ERR_MODIFIED (41), and errorCode 0x80090322 SEC_E_WRONG_PRINCIPAL; then it waits 0.2 s and sends close_notify and FIN. aardwolf cannot read a KRB-ERROR where it expects an AP-REP and closes first (FIN; its socket then answers the server's close_notify with RST). The Windows client shows a CredSSP failure (0x807 for SEC_E_WRONG_PRINCIPAL, \"the target principal name is incorrect\"). Decrypt with the key log to see the AP-REQ's principal, the KRB-ERROR and the errorCode: a CredSSP failure caused by the name resolving to the wrong host.",
  "verdict_needs_keys": true,
  "purpose_built_peer": "captures/lab/peers/rdp_peer.py with --kerberos-own-name: a Python 3 (standard library) RDP server written for the lab, because no installed server speaks Kerberos inside CredSSP (xrdp 0.9.21 has no NLA, freerdp-shadow-cli 2.11.7 is built without GSS-API). It follows MS-RDPBCGR and MS-CSSP only as far as this refusal needs: X.224 Connection Confirm selecting CredSSP, TLS (Python ssl, OpenSSL 3), then it parses the client's SPNEGO NegTokenInit (RFC 4178), the Kerberos mechToken's GSS-API framing (RFC 4121: OID, TOK_ID 01 00) and the AP-REQ's ticket (RFC 4120 5.3) as far as its clear-text realm and sname. It holds no service key and decrypts nothing: where a Windows server fails to decrypt a ticket made for another account's key, the peer compares the sname with its own name. Its answer copies the shape a Windows server gives to an undecryptable ticket (as public traces of Windows servers answering KRB_AP_ERR_MODIFIED show): NegTokenResp with negState accept-incomplete (1) and no supportedMech, whose responseToken is the GSS-API framed KRB-ERROR (TOK_ID 03 00) with stime, susec, error-code 41, realm and the server's own account as sname (NT-PRINCIPAL RDP\$). The errorCode is the peer's choice: MS-CSSP 2.2.1 says a server whose SPNEGO exchange fails SHOULD send one (versions 3, 4, 6), and SEC_E_WRONG_PRINCIPAL is the status Windows reports for a ticket its target could not decrypt; which status a Windows RDP server puts there in this case is not confirmed. It is not a Windows server.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "credssp-failure", "cause": "resolution-mismatch", "stage": "credssp",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x807", "remediation": "credssp-failure",
     "evidence": [], "tcp": "auto",
     "key_frames": ["dns_query", "dns_response", "syn", "syn_ack", "x224_request", "x224_confirm",
                    "client_hello", "server_hello", "fin", "last"],
     "details": {"requested_protocols": "auto", "selected_protocol": 2, "tls_version": "auto",
                 "credssp": {"ntstatus": "0x80090322"}, "dns": "auto"}}
  ]
}
EOF
