#!/usr/bin/env python3
"""rdp_peer.py: a purpose-built RDP server for the lab, for the refusals no available server
produces (xrdp 0.9 and FreeRDP 2's shadow server never send a CredSSP errorCode, an Early User
Authorization Result, a Set Error Info PDU or a licensing error: captures/lab/README.md).

It speaks only as far as each refusal needs, byte for byte as MS-RDPBCGR, MS-CSSP and MS-NLMP
lay it out, the way a Windows server answers:

  --refuse credssp-error   X.224 selects HYBRID (or HYBRID_EX); CredSSP with NTLM: CHALLENGE,
                           then, after the client's AUTHENTICATE, a TSRequest (version 6)
                           carrying errorCode: STATUS_LOGON_FAILURE (0xC000006D) when the
                           NTLMv2 response does not match the lab password, or --status when it
                           does (e.g. 0xC0000234 STATUS_ACCOUNT_LOCKED_OUT); then it closes.
  --refuse eua-denied      X.224 selects HYBRID_EX; NLA completes (NTLMv2 checked against the
                           lab password, the server's pubKeyAuth computed for CredSSP 5/6), the
                           client sends its credentials, the server answers the 4-byte Early
                           User Authorization Result ACCESS_DENIED (0x00000005) and closes.
  --refuse error-info      X.224 selects TLS (PROTOCOL_SSL); MCS Connect Initial/Response,
                           Erect Domain, Attach User, Channel Joins, Client Info; then the
                           licensing answer (STATUS_VALID_CLIENT), a Set Error Info PDU
                           (--status, e.g. 0x9) and MCS Disconnect Provider Ultimatum.
                           With --nla, X.224 selects HYBRID and NLA runs (and succeeds) first.
  --refuse license-error   as error-info, but the licensing answer is a Licensing Error
                           Message (--status, e.g. 0x6 ERR_NO_LICENSE_SERVER) with
                           ST_TOTAL_ABORT, then Disconnect Provider Ultimatum.
  --kerberos-own-name NAME with credssp-error: when the client's first CredSSP token is SPNEGO
                           carrying a Kerberos AP-REQ, the peer reads the ticket's clear-text
                           realm and sname (RFC 4120 5.3) and, when the sname is not
                           TERMSRV/NAME, answers as a Windows server that cannot decrypt a
                           ticket made for another host's key: a TSRequest whose negoToken is a
                           SPNEGO NegTokenResp (negState accept-incomplete) holding a KRB-ERROR
                           KRB_AP_ERR_MODIFIED (41), plus errorCode --status; then it closes.

CredSSP's NTLM messages may come bare (FreeRDP) or inside SPNEGO (aardwolf, Windows); the peer
answers in kind, and checks a SPNEGO mechListMIC. Its last CredSSP answer carries pubKeyAuth
alone (no SPNEGO accept-completed with its own mechListMIC, which Windows adds).

Python 3 standard library only. MD4 and RC4 are implemented here (OpenSSL 3 disables MD4).
The lab password comes from a file, never from the command line; nothing secret is logged.
"""
import argparse
import hashlib
import hmac
import os
import socket
import ssl
import struct
import sys
import time


def log(msg):
    print(f"rdp_peer: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# MD4 (RFC 1320), RC4, the NTLM keys (MS-NLMP 3.3.2, 3.4.5)

def md4(data):
    def f(x, y, z): return (x & y) | (~x & z)
    def g(x, y, z): return (x & y) | (x & z) | (y & z)
    def h(x, y, z): return x ^ y ^ z
    def rotl(v, s): v &= 0xFFFFFFFF; return ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF
    msg = bytearray(data)
    bits = (8 * len(data)) & 0xFFFFFFFFFFFFFFFF
    msg.append(0x80)
    while len(msg) % 64 != 56:
        msg.append(0)
    msg += struct.pack("<Q", bits)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off:off + 64])
        aa, bb, cc, dd = a, b, c, d
        for i in range(16):
            s = (3, 7, 11, 19)[i % 4]
            if i % 4 == 0: a = rotl(a + f(b, c, d) + x[i], s)
            elif i % 4 == 1: d = rotl(d + f(a, b, c) + x[i], s)
            elif i % 4 == 2: c = rotl(c + f(d, a, b) + x[i], s)
            else: b = rotl(b + f(c, d, a) + x[i], s)
        for i in range(16):
            k = (i % 4) * 4 + i // 4
            s = (3, 5, 9, 13)[i % 4]
            if i % 4 == 0: a = rotl(a + g(b, c, d) + x[k] + 0x5A827999, s)
            elif i % 4 == 1: d = rotl(d + g(a, b, c) + x[k] + 0x5A827999, s)
            elif i % 4 == 2: c = rotl(c + g(d, a, b) + x[k] + 0x5A827999, s)
            else: b = rotl(b + g(c, d, a) + x[k] + 0x5A827999, s)
        order = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
        for i in range(16):
            k = order[i]
            s = (3, 9, 11, 15)[i % 4]
            if i % 4 == 0: a = rotl(a + h(b, c, d) + x[k] + 0x6ED9EBA1, s)
            elif i % 4 == 1: d = rotl(d + h(a, b, c) + x[k] + 0x6ED9EBA1, s)
            elif i % 4 == 2: c = rotl(c + h(d, a, b) + x[k] + 0x6ED9EBA1, s)
            else: b = rotl(b + h(c, d, a) + x[k] + 0x6ED9EBA1, s)
        a, b, c, d = [(v + w) & 0xFFFFFFFF for v, w in ((a, aa), (b, bb), (c, cc), (d, dd))]
    return struct.pack("<4I", a, b, c, d)


class RC4:
    def __init__(self, key):
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) & 0xFF
            s[i], s[j] = s[j], s[i]
        self.s, self.i, self.j = s, 0, 0

    def crypt(self, data):
        s, i, j = self.s, self.i, self.j
        out = bytearray()
        for byte in data:
            i = (i + 1) & 0xFF
            j = (j + s[i]) & 0xFF
            s[i], s[j] = s[j], s[i]
            out.append(byte ^ s[(s[i] + s[j]) & 0xFF])
        self.i, self.j = i, j
        return bytes(out)


def hmac_md5(key, data):
    return hmac.new(key, data, hashlib.md5).digest()


def utf16(s):
    return s.encode("utf-16-le")


# NegotiateFlags (MS-NLMP 2.2.2.5)
NTLMSSP_NEGOTIATE_UNICODE = 0x00000001
NTLMSSP_REQUEST_TARGET = 0x00000004
NTLMSSP_NEGOTIATE_SIGN = 0x00000010
NTLMSSP_NEGOTIATE_SEAL = 0x00000020
NTLMSSP_NEGOTIATE_NTLM = 0x00000200
NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000
NTLMSSP_TARGET_TYPE_SERVER = 0x00020000
NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000
NTLMSSP_NEGOTIATE_VERSION = 0x02000000
NTLMSSP_NEGOTIATE_128 = 0x20000000
NTLMSSP_NEGOTIATE_KEY_EXCH = 0x40000000
NTLMSSP_NEGOTIATE_56 = 0x80000000
SERVER_FLAGS = (NTLMSSP_NEGOTIATE_UNICODE | NTLMSSP_REQUEST_TARGET | NTLMSSP_NEGOTIATE_SIGN
                | NTLMSSP_NEGOTIATE_SEAL | NTLMSSP_NEGOTIATE_NTLM | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
                | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY | NTLMSSP_NEGOTIATE_VERSION
                | NTLMSSP_NEGOTIATE_128 | NTLMSSP_NEGOTIATE_KEY_EXCH | NTLMSSP_NEGOTIATE_56)

# The peer is a stand-alone server: its NetBIOS domain is its computer name.
COMPUTER = "RDPLABPEER"
DNS_NAME = "rdplabpeer"
# Version structure (2.2.2.10): 10.0 build 20348, NTLMSSP_REVISION_W2K3.
NTLM_VERSION = struct.pack("<BBH3sB", 10, 0, 20348, b"\0\0\0", 0x0F)


def ntlm_field(msg, off):
    length, _maxlen, offset = struct.unpack_from("<HHI", msg, off)
    if offset + length > len(msg):
        raise ValueError("NTLM field out of range")
    return msg[offset:offset + length]


def ntlm_challenge(client_flags, server_challenge):
    flags = (client_flags & SERVER_FLAGS) | NTLMSSP_TARGET_TYPE_SERVER | NTLMSSP_NEGOTIATE_TARGET_INFO
    flags |= NTLMSSP_NEGOTIATE_UNICODE | NTLMSSP_NEGOTIATE_NTLM
    target = utf16(COMPUTER)
    filetime = int((time.time() + 11644473600) * 10_000_000)
    avs = b""
    for av_id, value in ((2, utf16(COMPUTER)), (1, utf16(COMPUTER)), (4, utf16(DNS_NAME)),
                         (3, utf16(DNS_NAME)), (7, struct.pack("<Q", filetime))):
        avs += struct.pack("<HH", av_id, len(value)) + value
    avs += struct.pack("<HH", 0, 0)  # MsvAvEOL
    base = 56
    msg = b"NTLMSSP\0" + struct.pack("<I", 2)
    msg += struct.pack("<HHI", len(target), len(target), base)
    msg += struct.pack("<I", flags) + server_challenge + b"\0" * 8
    msg += struct.pack("<HHI", len(avs), len(avs), base + len(target))
    msg += NTLM_VERSION
    return msg + target + avs, flags


class NTLMServer:
    """The server side of NTLMv2 with extended session security, key exchange and sealing."""

    def __init__(self, password):
        self.nt_hash = md4(utf16(password))
        self.challenge = os.urandom(8)
        self.negotiate = self.challenge_msg = None
        self.flags = 0
        self.user = self.domain = ""

    def on_negotiate(self, msg):
        if msg[:8] != b"NTLMSSP\0" or struct.unpack_from("<I", msg, 8)[0] != 1:
            raise ValueError("not an NTLM NEGOTIATE")
        self.negotiate = msg
        client_flags = struct.unpack_from("<I", msg, 12)[0]
        self.challenge_msg, self.flags = ntlm_challenge(client_flags, self.challenge)
        return self.challenge_msg

    def on_authenticate(self, msg):
        """True when the NTLMv2 response proves the lab password; sets up the session keys."""
        if msg[:8] != b"NTLMSSP\0" or struct.unpack_from("<I", msg, 8)[0] != 3:
            raise ValueError("not an NTLM AUTHENTICATE")
        nt_response = ntlm_field(msg, 20)
        self.domain = ntlm_field(msg, 28).decode("utf-16-le", "replace")
        self.user = ntlm_field(msg, 36).decode("utf-16-le", "replace")
        encrypted_key = ntlm_field(msg, 52)
        if len(nt_response) < 48:
            return False
        response_key = hmac_md5(self.nt_hash, utf16(self.user.upper() + self.domain))
        proof = hmac_md5(response_key, self.challenge + nt_response[16:])
        if not hmac.compare_digest(proof, nt_response[:16]):
            return False
        key_exchange_key = hmac_md5(response_key, proof)  # SessionBaseKey (NTLMv2)
        session_key = key_exchange_key
        if self.flags & NTLMSSP_NEGOTIATE_KEY_EXCH and len(encrypted_key) == 16:
            session_key = RC4(key_exchange_key).crypt(encrypted_key)
        # MIC (2.2.1.3): over the three messages with the MIC field zeroed.
        if len(msg) >= 88:
            zeroed = msg[:72] + b"\0" * 16 + msg[88:]
            mic = hmac_md5(session_key, self.negotiate + self.challenge_msg + zeroed)
            log("NTLM MIC " + ("verified" if hmac.compare_digest(mic, msg[72:88]) else "absent or different"))

        def derive(magic):
            return hashlib.md5(session_key + magic).digest()
        self.client_sign = derive(b"session key to client-to-server signing key magic constant\0")
        self.server_sign = derive(b"session key to server-to-client signing key magic constant\0")
        self.client_seal_key = derive(b"session key to client-to-server sealing key magic constant\0")
        self.server_seal_key = derive(b"session key to server-to-client sealing key magic constant\0")
        self.client_seal = RC4(self.client_seal_key)
        self.server_seal = RC4(self.server_seal_key)
        self.client_seq = self.server_seq = 0
        return True

    def check_mech_list_mic(self, mech_types, mic):
        """The client's SPNEGO mechListMIC: the NTLM signature (3.4.4.2, sequence number 0) of
        the DER mechTypes it offered. aardwolf then starts both RC4 sealing handles over from
        their keys while the sequence numbers go on (its pubKeyAuth has sequence number 1 and
        a fresh RC4 state), so the peer does the same."""
        checksum = hmac_md5(self.client_sign, struct.pack("<I", self.client_seq) + mech_types)[:8]
        want = struct.pack("<I", 1) + self.client_seal.crypt(checksum) + struct.pack("<I", self.client_seq)
        self.client_seq += 1
        self.client_seal = RC4(self.client_seal_key)
        self.server_seal = RC4(self.server_seal_key)
        return hmac.compare_digest(want, mic)

    def unseal_from_client(self, blob):
        """DecryptMessage (3.4.3 with 3.4.4.2): signature (16 bytes) then the sealed data."""
        signature, sealed = blob[:16], blob[16:]
        plain = self.client_seal.crypt(sealed)
        checksum = hmac_md5(self.client_sign, struct.pack("<I", self.client_seq) + plain)[:8]
        checksum = self.client_seal.crypt(checksum)
        ok = signature == struct.pack("<I", 1) + checksum + struct.pack("<I", self.client_seq)
        self.client_seq += 1
        return plain, ok

    def seal_to_client(self, plain):
        sealed = self.server_seal.crypt(plain)
        checksum = hmac_md5(self.server_sign, struct.pack("<I", self.server_seq) + plain)[:8]
        checksum = self.server_seal.crypt(checksum)
        signature = struct.pack("<I", 1) + checksum + struct.pack("<I", self.server_seq)
        self.server_seq += 1
        return signature + sealed


# ----------------------------------------------------------------------------------------------
# DER for TSRequest (MS-CSSP 2.2.1)

def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def der_int(v):
    # errorCode is an NTSTATUS: its 32 bits as a signed INTEGER (0xC000006D is negative),
    # minimal two's complement.
    if v >= 0x80000000:
        v -= 1 << 32
    n = 1
    while not (-(1 << (8 * n - 1)) <= v < (1 << (8 * n - 1))):
        n += 1
    return der(0x02, v.to_bytes(n, "big", signed=True))


def der_read(b, off):
    """(tag, content start, content end) of the element at off."""
    tag = b[off]
    n = b[off + 1]
    off += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[off:off + k], "big")
        off += k
    if off + n > len(b):
        raise ValueError("DER element out of range")
    return tag, off, off + n


def ts_request(version, token=None, pub_key_auth=None, error_code=None):
    body = der(0xA0, der_int(version))
    if token is not None:
        body += der(0xA1, der(0x30, der(0x30, der(0xA0, der(0x04, token)))))
    if pub_key_auth is not None:
        body += der(0xA3, der(0x04, pub_key_auth))
    if error_code is not None:
        body += der(0xA4, der_int(error_code))
    return der(0x30, body)


def parse_ts_request(b):
    tag, start, end = der_read(b, 0)
    if tag != 0x30:
        raise ValueError("not a TSRequest")
    out = {}
    off = start
    while off < end:
        t, s, e = der_read(b, off)
        if t == 0xA0:
            _, vs, ve = der_read(b, s)
            out["version"] = int.from_bytes(b[vs:ve], "big", signed=True)
        elif t == 0xA1:
            _, s1, _ = der_read(b, s)      # SEQUENCE OF
            _, s2, _ = der_read(b, s1)     # SEQUENCE
            _, s3, _ = der_read(b, s2)     # [0]
            _, s4, e4 = der_read(b, s3)    # OCTET STRING
            out["token"] = b[s4:e4]
        elif t in (0xA2, 0xA3, 0xA5):
            _, os_, oe = der_read(b, s)
            out[{0xA2: "authInfo", 0xA3: "pubKeyAuth", 0xA5: "clientNonce"}[t]] = b[os_:oe]
        off = e
    return out


# ----------------------------------------------------------------------------------------------
# SPNEGO (RFC 4178; GSS-API framing RFC 2743 3.1): some clients (aardwolf) wrap NTLM in it

SPNEGO_OID = der(0x06, bytes.fromhex("2b0601050502"))          # 1.3.6.1.5.5.2
NTLM_OID = der(0x06, bytes.fromhex("2b06010401823702020a"))    # 1.3.6.1.4.1.311.2.2.10
ACCEPT_INCOMPLETE = 1


def spnego_unwrap(token):
    """(NTLM message, DER mechTypes, mechListMIC) of a negoToken: a bare NTLM message, a
    NegTokenInit in its GSS-API framing (mechTypes), or a NegTokenResp (mechListMIC)."""
    if token[:8] == b"NTLMSSP\0":
        return token, None, None
    tag, s, e = der_read(token, 0)
    if tag == 0x60:                                   # [APPLICATION 0] thisMech, NegTokenInit
        _, _, oid_end = der_read(token, s)
        if token[s:oid_end] != SPNEGO_OID:
            raise ValueError("a GSS-API token that is not SPNEGO")
        tag, s, e = der_read(token, oid_end)
        if tag != 0xA0:
            raise ValueError("SPNEGO without a NegTokenInit")
    elif tag != 0xA1:                                 # NegTokenResp
        raise ValueError("a negoToken that is neither NTLM nor SPNEGO")
    _, s, e = der_read(token, s)                      # SEQUENCE
    fields = {}
    while s < e:
        t, fs, fe = der_read(token, s)
        fields[t] = token[fs:fe]
        s = fe
    mech_types = None
    if tag == 0xA0:
        mech_types = fields.get(0xA0, b"")
        if NTLM_OID not in mech_types:
            raise ValueError("SPNEGO without NTLM among its mechTypes")
    ntlm = der_octets(fields.get(0xA2))               # mechToken / responseToken
    if ntlm is None:
        raise ValueError("SPNEGO without an NTLM token")
    return ntlm, mech_types, der_octets(fields.get(0xA3))  # mechListMIC (NegTokenResp)


def der_octets(element):
    """The content of a DER OCTET STRING element, or None."""
    if element is None:
        return None
    _, s, e = der_read(element, 0)
    return element[s:e]


def spnego_response(ntlm):
    """NegTokenResp: accept-incomplete, NTLM selected, the server's NTLM message."""
    return der(0xA1, der(0x30, der(0xA0, der(0x0A, bytes([ACCEPT_INCOMPLETE])))
                         + der(0xA1, NTLM_OID) + der(0xA2, der(0x04, ntlm))))


# ----------------------------------------------------------------------------------------------
# I/O

def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("the client closed")
        buf += chunk
    return buf


def recv_tpkt(conn):
    head = recv_exact(conn, 4)
    if head[0] != 3:
        raise ValueError(f"not TPKT: {head[0]:#x}")
    length = struct.unpack(">H", head[2:4])[0]
    return head + recv_exact(conn, length - 4)


def recv_der(conn):
    head = recv_exact(conn, 2)
    if head[1] & 0x80:
        k = head[1] & 0x7F
        more = recv_exact(conn, k)
        n = int.from_bytes(more, "big")
        return head + more + recv_exact(conn, n)
    return head + recv_exact(conn, head[1])


def tpkt(payload):
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def x224_data(payload):
    return tpkt(b"\x02\xf0\x80" + payload)


# ----------------------------------------------------------------------------------------------
# X.224 (MS-RDPBCGR 2.2.1.1, 2.2.1.2)

PROTOCOL_SSL, PROTOCOL_HYBRID, PROTOCOL_HYBRID_EX = 0x1, 0x2, 0x8


def x224_negotiate(conn, want):
    cr = recv_tpkt(conn)
    if cr[5] & 0xF0 != 0xE0:
        raise ValueError("not an X.224 Connection Request")
    requested = 0
    # RDP_NEG_REQ is the last 8 bytes of the CR (type 1, flags, length 8, protocols).
    if len(cr) >= 19 and cr[-8] == 0x01 and cr[-6:-4] == b"\x08\x00":
        requested = struct.unpack("<I", cr[-4:])[0]
    selected = next((p for p in want if requested & p), None)
    if selected is None:
        raise ValueError(f"the client did not offer {want} (requested {requested:#x})")
    # RDP_NEG_RSP flags: EXTENDED_CLIENT_DATA_SUPPORTED (0x01).
    neg = struct.pack("<BBHI", 0x02, 0x01, 8, selected)
    cc = bytes([6 + len(neg), 0xD0, 0, 0, 0x12, 0x34, 0]) + neg
    conn.sendall(tpkt(cc))
    log(f"X.224: requested {requested:#x}, selected {selected:#x}")
    return requested, selected


# ----------------------------------------------------------------------------------------------
# CredSSP (MS-CSSP 3.1.5)

def credssp(tls, args, password, pubkey, eua):
    req = parse_ts_request(recv_der(tls))
    version = min(6, req.get("version", 2))
    if args.kerberos_own_name and kerberos_ap_req(req["token"]) is not None:
        return kerberos_refusal(tls, args, version, req["token"])
    ntlm = NTLMServer(password)
    negotiate, mech_types, _ = spnego_unwrap(req["token"])
    challenge = ntlm.on_negotiate(negotiate)
    spnego = mech_types is not None
    tls.sendall(ts_request(version, token=spnego_response(challenge) if spnego else challenge))
    req = parse_ts_request(recv_der(tls))
    authenticate, _, mic = spnego_unwrap(req["token"])
    authenticated = ntlm.on_authenticate(authenticate)
    log(f"NTLM AUTHENTICATE from {ntlm.domain + '/' if ntlm.domain else ''}{ntlm.user}: "
        f"{'right' if authenticated else 'wrong'} password{' (in SPNEGO)' if spnego else ''}")
    if authenticated and mic is not None:
        log("SPNEGO mechListMIC " + ("verified" if ntlm.check_mech_list_mic(mech_types, mic) else "different"))
    if args.refuse == "credssp-error" or not authenticated:
        # STATUS_LOGON_FAILURE for a wrong password or unknown user, like Windows.
        code = args.status if authenticated else 0xC000006D
        if ntlm.user.lower() != args.user.lower():
            code = 0xC000006D
        tls.sendall(ts_request(version, error_code=code))
        log(f"CredSSP: errorCode {code:#010x}")
        return False
    # pubKeyAuth (3.1.5): versions 5 and 6 bind the key with SHA-256 and the client's nonce.
    nonce = req.get("clientNonce", b"")
    plain, ok = ntlm.unseal_from_client(req["pubKeyAuth"])
    want = hashlib.sha256(b"CredSSP Client-To-Server Binding Hash\0" + nonce + pubkey).digest()
    if not ok or plain != want:
        log("the client's pubKeyAuth does not bind this certificate's key")
        tls.sendall(ts_request(version, error_code=0x8009030F))  # SEC_E_MESSAGE_ALTERED
        return False
    answer = hashlib.sha256(b"CredSSP Server-To-Client Binding Hash\0" + nonce + pubkey).digest()
    tls.sendall(ts_request(version, pub_key_auth=ntlm.seal_to_client(answer)))
    req = parse_ts_request(recv_der(tls))
    if "authInfo" not in req:
        raise ValueError("no authInfo from the client")
    log("CredSSP: the client sent its credentials (authInfo, not read)")
    if eua:
        # Early User Authorization Result (MS-RDPBCGR 2.2.10.2), little-endian.
        tls.sendall(struct.pack("<I", 0x00000005))
        log("Early User Authorization Result: ACCESS_DENIED")
        return False
    return True


# ----------------------------------------------------------------------------------------------
# Kerberos inside SPNEGO (RFC 4178 4.2, RFC 4121 4.1, RFC 4120 5.3, 5.5.1, 5.9.1)

KRB5_OIDS = {
    bytes.fromhex("2a864886f712010202"): "1.2.840.113554.1.2.2",    # Kerberos 5
    bytes.fromhex("2a864882f712010202"): "1.2.840.48018.1.2.2",     # Microsoft's Kerberos 5 OID
}
KRB_AP_ERR_MODIFIED = 41


def der_children(b, start, end):
    """(tag, content start, content end) of each element between start and end."""
    out = []
    off = start
    while off < end:
        t, s, e = der_read(b, off)
        out.append((t, s, e))
        off = e
    return out


def der_field(b, start, end, tag):
    """The content of the first element tagged `tag` between start and end."""
    for t, s, e in der_children(b, start, end):
        if t == tag:
            return s, e
    raise ValueError(f"no element {tag:#x}")


def kerberos_string(b, s, e):
    """The KerberosString (GeneralString, 0x1B) that is the content of s..e."""
    t, vs, ve = der_read(b, s)
    if t != 0x1B:
        raise ValueError("KerberosString is not a GeneralString")
    return b[vs:ve].decode("ascii", "replace")


def kerberos_ap_req(token):
    """(mechanism OID bytes, realm, sname components) of the AP-REQ inside a SPNEGO
    NegTokenInit, or None when the token is not SPNEGO with a Kerberos mechToken."""
    try:
        if not token or token[0] != 0x60:
            return None
        _, s, e = der_read(token, 0)                     # [APPLICATION 0] GSS-API framing
        t, os_, oe = der_read(token, s)                  # SPNEGO OID 1.3.6.1.5.5.2
        if t != 0x06 or token[os_:oe] != bytes.fromhex("2b0601050502"):
            return None
        t, ns, ne = der_read(token, oe)                  # negTokenInit [0]
        if t != 0xA0:
            return None
        _, ss, se = der_read(token, ns)                  # NegTokenInit SEQUENCE
        ms, me = der_field(token, ss, se, 0xA2)          # mechToken [2]
        _, mts, mte = der_read(token, ms)                # OCTET STRING
        mech = token[mts:mte]
        if not mech or mech[0] != 0x60:
            return None
        _, gs, ge = der_read(mech, 0)                    # GSS-API framing of the Kerberos token
        t, kos, koe = der_read(mech, gs)
        oid = mech[kos:koe]
        if t != 0x06 or oid not in KRB5_OIDS or mech[koe:koe + 2] != b"\x01\x00":  # TOK_ID AP-REQ
            return None
        ap = mech[koe + 2:ge]
        t, as_, ae = der_read(ap, 0)                     # AP-REQ [APPLICATION 14]
        if t != 0x6E:
            return None
        _, qs, qe = der_read(ap, as_)                    # SEQUENCE
        ts, te = der_field(ap, qs, qe, 0xA3)             # ticket [3]
        _, tks, tke = der_read(ap, ts)                   # Ticket [APPLICATION 1]
        _, fs, fe = der_read(ap, tks)                    # SEQUENCE
        rs, re_ = der_field(ap, fs, fe, 0xA1)            # realm [1]
        ns_, ne_ = der_field(ap, fs, fe, 0xA2)           # sname [2]
        return oid, kerberos_string(ap, rs, re_), principal_names(ap, ns_, ne_)
    except (ValueError, IndexError):
        return None


def principal_names(b, s, e):
    """name-string of the PrincipalName whose SEQUENCE starts at s."""
    _, ps, pe = der_read(b, s)
    ls, le = der_field(b, ps, pe, 0xA1)
    _, qs, qe = der_read(b, ls)
    names = []
    for t, cs, ce in der_children(b, qs, qe):
        if t != 0x1B:
            raise ValueError("KerberosString is not a GeneralString")
        names.append(b[cs:ce].decode("ascii", "replace"))
    return names


def krb_error(code, realm, sname):
    """KRB-ERROR [APPLICATION 30] (RFC 4120 5.9.1): pvno, msg-type, stime, susec, error-code,
    realm and sname (NT-PRINCIPAL), as a Windows server sends it (no ctime, cname or e-data)."""
    now = time.time()
    stime = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(now)).encode()
    body = der(0xA0, der_int(5)) + der(0xA1, der_int(30))
    body += der(0xA4, der(0x18, stime)) + der(0xA5, der_int(int((now % 1) * 1_000_000)))
    body += der(0xA6, der_int(code)) + der(0xA9, der(0x1B, realm.encode()))
    names = b"".join(der(0x1B, n.encode()) for n in sname)
    body += der(0xAA, der(0x30, der(0xA0, der_int(1)) + der(0xA1, der(0x30, names))))
    return der(0x7E, der(0x30, body))


def kerberos_refusal(tls, args, version, token):
    oid, realm, sname = kerberos_ap_req(token)
    spn = "/".join(sname)
    own = f"TERMSRV/{args.kerberos_own_name}"
    log(f"Kerberos AP-REQ: ticket for {spn} in realm {realm}; this server is {own}")
    if spn.lower() == own.lower():
        # Accepting would need the service key to decrypt the ticket: not what the peer is for.
        raise ValueError("a ticket for this server's own name: the peer only refuses others")
    # The server's answer: the mechanism's error token in the GSS-API framing (TOK_ID 03 00),
    # inside a NegTokenResp. sname is the account the server runs as (its computer account).
    account = args.kerberos_own_name.split(".")[0].upper() + "$"
    error = krb_error(KRB_AP_ERR_MODIFIED, realm, [account])
    framed = der(0x60, der(0x06, oid) + b"\x03\x00" + error)
    resp = der(0xA1, der(0x30, der(0xA0, der(0x0A, b"\x01")) + der(0xA2, der(0x04, framed))))
    tls.sendall(ts_request(version, token=resp, error_code=args.status))
    log(f"Kerberos: KRB-ERROR KRB_AP_ERR_MODIFIED (SPNEGO accept-incomplete), errorCode {args.status:#010x}")
    return False


# ----------------------------------------------------------------------------------------------
# MCS and the refusal inside the session (MS-RDPBCGR 2.2.1.3 - 2.2.1.12, 2.2.5.1)

def ber_len(n):
    return bytes([n]) if n < 0x80 else b"\x82" + struct.pack(">H", n)


def ber(tag, content):
    return tag + ber_len(len(content)) + content


def per_len(n):
    return bytes([n]) if n < 0x80 else struct.pack(">H", 0x8000 | n)


def client_channels(ci):
    """The number of static channels the client's CS_NET block asks for."""
    at = ci.find(b"Duca")
    if at < 0:
        raise ValueError("no GCC Conference Create Request")
    off = at + 4
    off += 2 if ci[off] & 0x80 else 1
    while off + 4 <= len(ci):
        btype, blen = struct.unpack_from("<HH", ci, off)
        if blen < 4:
            break
        if btype == 0xC003:
            return struct.unpack_from("<I", ci, off + 4)[0]
        off += blen
    return 0


IO_CHANNEL = 1003
USER_ID = 1007


def mcs_connect_response(requested, channels):
    ids = [IO_CHANNEL + 1 + i for i in range(channels)]
    core = struct.pack("<HHIII", 0x0C01, 16, 0x00080004, requested, 0)
    security = struct.pack("<HHII", 0x0C02, 12, 0, 0)  # no RDP encryption under TLS
    net = struct.pack("<HH", IO_CHANNEL, len(ids)) + b"".join(struct.pack("<H", i) for i in ids)
    if len(ids) % 2:
        net += b"\0\0"
    net = struct.pack("<HH", 0x0C03, 4 + len(net)) + net
    blocks = core + security + net
    # GCC Conference Create Response (T.124), PER: key t124 0.0.20.124.0.1, then the
    # ConnectGCCPDU choice, nodeID, tag 1, result success, one set of user data, "McDn".
    ccrsp_pdu = b"\x14\x76\x0a\x01\x01\x00\x01\xc0\x00McDn" + per_len(len(blocks)) + blocks
    gcc = b"\x00\x05\x00\x14\x7c\x00\x01" + per_len(len(ccrsp_pdu)) + ccrsp_pdu
    params = b"".join(ber(b"\x02", v) for v in (b"\x22", b"\x03", b"\x00", b"\x01", b"\x00",
                                               b"\x01", b"\x00\xff\xf8", b"\x02"))
    body = ber(b"\x0a", b"\x00") + ber(b"\x02", b"\x00") + ber(b"\x30", params) + ber(b"\x04", gcc)
    return x224_data(ber(b"\x7f\x66", body)), ids


def send_data_indication(channel, data):
    # initiator is the server's own MCS user (1002); priority high, begin and end segment.
    return x224_data(struct.pack(">BHHB", 0x68, 1002 - 1001, channel, 0x70) + per_len(len(data)) + data)


def license_error(code, transition):
    # Basic security header SEC_LICENSE_PKT, then LICENSE_PREAMBLE (ERROR_ALERT, version 3),
    # LICENSE_ERROR_MESSAGE with an empty BB_ERROR_BLOB (2.2.1.12.1.3, MS-RDPELE 2.2.2.7).
    msg = struct.pack("<IIHH", code, transition, 0x0004, 0)
    return struct.pack("<HH", 0x0080, 0) + struct.pack("<BBH", 0xFF, 0x83, 4 + len(msg)) + msg


def set_error_info(code):
    # Share Control Header (PDUTYPE_DATAPDU, version 1, source 1002), Share Data Header
    # (shareId, STREAM_LOW, PDUTYPE2_SET_ERROR_INFO_PDU 0x2F), errorInfo (2.2.5.1.1).
    data = struct.pack("<I", code)
    share_data = struct.pack("<IBBHBBH", 0x000103EA, 0, 1, len(data) + 4, 0x2F, 0, 0) + data
    return struct.pack("<HHH", 6 + len(share_data), 0x0017, 1002) + share_data


def mcs_session(tls, args, requested):
    ci = recv_tpkt(tls)
    if b"\x7f\x65" not in ci[7:9]:
        raise ValueError("not an MCS Connect Initial")
    channels = client_channels(ci)
    response, ids = mcs_connect_response(requested, channels)
    tls.sendall(response)
    log(f"MCS: Connect Response with {channels} static channel(s)")
    while True:
        pdu = recv_tpkt(tls)
        if len(pdu) < 8:
            continue
        kind = pdu[7] >> 2
        if kind == 1:      # Erect Domain Request
            continue
        if kind == 10:     # Attach User Request -> Confirm: success, initiator 1007
            tls.sendall(x224_data(struct.pack(">BBH", 0x2E, 0, USER_ID - 1001)))
        elif kind == 14:   # Channel Join Request -> Confirm: success, the channel asked for
            channel = struct.unpack(">H", pdu[10:12])[0]
            tls.sendall(x224_data(struct.pack(">BBHHH", 0x3E, 0, USER_ID - 1001, channel, channel)))
        elif kind == 25:   # Send Data Request: the Client Info PDU (SEC_INFO_PKT), not read
            length_at = 13
            data = pdu[length_at + (2 if pdu[length_at] & 0x80 else 1):]
            if struct.unpack_from("<H", data, 0)[0] & 0x0040:
                log("Client Info PDU received (contents not read)")
                break
        else:
            raise ValueError(f"unexpected MCS PDU {kind}")
    if args.refuse == "license-error":
        # ST_TOTAL_ABORT (1): the licensing protocol ends here.
        tls.sendall(send_data_indication(IO_CHANNEL, license_error(args.status, 0x00000001)))
        log(f"licensing: error {args.status:#x}, ST_TOTAL_ABORT")
    else:
        # STATUS_VALID_CLIENT, ST_NO_TRANSITION: no license needed.
        tls.sendall(send_data_indication(IO_CHANNEL, license_error(0x00000007, 0x00000002)))
        tls.sendall(send_data_indication(IO_CHANNEL, set_error_info(args.status)))
        log(f"Set Error Info {args.status:#x}")
    # MCS Disconnect Provider Ultimatum, reason rn-provider-initiated (1).
    tls.sendall(x224_data(b"\x20\x80"))
    log("MCS Disconnect Provider Ultimatum")


# ----------------------------------------------------------------------------------------------

def serve(conn, ctx, args, password, pubkey):
    conn.settimeout(8)
    if args.refuse == "eua-denied":
        want = [PROTOCOL_HYBRID_EX]
    elif args.refuse == "credssp-error":
        want = [PROTOCOL_HYBRID_EX, PROTOCOL_HYBRID] if args.hybrid_ex else [PROTOCOL_HYBRID]
    else:
        want = [PROTOCOL_HYBRID] if args.nla else [PROTOCOL_SSL]
    requested, selected = x224_negotiate(conn, want)
    tls = ctx.wrap_socket(conn, server_side=True)
    try:
        log(f"TLS: {tls.version()}")
        accepted = True
        if selected in (PROTOCOL_HYBRID, PROTOCOL_HYBRID_EX):
            accepted = credssp(tls, args, password, pubkey, eua=args.refuse == "eua-denied")
        if accepted:
            mcs_session(tls, args, requested)
        # A short pause lets the client read the refusal first; then close_notify and FIN.
        time.sleep(0.2)
        tls.settimeout(2)
        tls.unwrap().close()
    finally:
        tls.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=3389)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--pubkey", help="DER RSAPublicKey of the certificate (CredSSP binding)")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password-file", help="the lab password (first line)")
    ap.add_argument("--refuse", required=True,
                    choices=["credssp-error", "eua-denied", "error-info", "license-error"])
    ap.add_argument("--status", type=lambda s: int(s, 0), default=0,
                    help="the errorCode, errorInfo or licensing error to send")
    ap.add_argument("--nla", action="store_true",
                    help="error-info, license-error: select HYBRID and run NLA first")
    ap.add_argument("--hybrid-ex", action="store_true", help="credssp-error: select HYBRID_EX when offered")
    ap.add_argument("--kerberos-own-name", help="credssp-error: refuse a Kerberos ticket for another name than TERMSRV/NAME")
    args = ap.parse_args()
    password = ""
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\n")
    pubkey = b""
    if args.pubkey:
        with open(args.pubkey, "rb") as f:
            pubkey = f.read()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    family = socket.AF_INET6 if ":" in args.listen else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.listen, args.port))
    srv.listen(4)
    log(f"listening on {args.listen}:{args.port}, refusing with {args.refuse}")
    while True:
        conn, peer = srv.accept()
        log(f"connection from {peer[0]}:{peer[1]}")
        try:
            serve(conn, ctx, args, password, pubkey)
        except (OSError, ssl.SSLError, ValueError, EOFError, KeyError, IndexError, struct.error) as e:
            log(f"connection ended: {e!r}")
        finally:
            conn.close()


if __name__ == "__main__":
    main()
