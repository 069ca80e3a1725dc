#!/usr/bin/env python3
"""Write NAME.expected.json (schema 1 of captures/README.md) for a lab scenario.

The scenario script pipes in what it designed (JSON on stdin):

    {"description": "...", "server": "198.51.100.20", "server_port": 3389,
     "purpose_built_peer": null,
     "attempts": [
        {"label": "rst-refused", "cause": "host-not-accepting", "stage": "tcp-handshake",
         "ended_by": "server", "tcp": {"outcome": "refused", "established": false},
         "key_frames": ["syn", "rst", "last"],
         "details": {"negotiation_failure": "HYBRID_REQUIRED_BY_SERVER", "rst_ttl": "auto"}}]}

This script reads the capture back with tshark and
  * finds the RDP attempts (TCP connections whose SYN goes to server:server_port), and fails
    unless there are exactly as many as the scenario designed;
  * computes the key frames named in each attempt (frame numbers as `tshark -r` numbers them)
    and fails when one of them is missing from the wire;
  * checks the designed TCP facts (outcome, established) against the wire (or takes them from
    the wire when the scenario says "tcp": "auto" because they depend on timing);
  * fills details given as "auto" from the wire, and checks literal details that the wire can
    show (negotiation codes, alerts, ICMP, TTLs) against it;
  * adds the common fields and writes the file with a fixed key order.
So the label, cause, stage and ended_by come from the scenario's design; the wire only has to
agree with it, or the scenario fails and nothing is written. So do the rest of the verdict the
scenario implies: the Windows client code (FACTS.md section 1), the confidence the wire allows
(captures/README.md), the remediation entry, and the evidence, named as key frames.

The "certificate" key frame is where the server's Certificate message shows without keys: under
TLS 1.3 it is encrypted, so the wire shows none, even when the scenario has a key log.
"""
import argparse
import json
import re
import subprocess
import sys

LABELS = {"success", "syn-unanswered", "rst-refused", "icmp-unreachable", "reset-by-middlebox",
          "reset", "mtu-blackhole", "negotiation-failure", "tls-alert", "tls-rejected",
          "credssp-failure", "early-disconnect", "client-abort", "non-rdp-service", "incomplete",
          "path-loss", "proxy-refused"}
CAUSES = {"network-blockade", "tls-credssp", "host-not-accepting", "resolution-mismatch",
          "client-side", "none"}
STAGES = {"tcp-handshake", "x224-negotiation", "tls-handshake", "credssp", "mcs-connect",
          "session"}
ENDED_BY = {"client", "server", "middlebox", "none"}
OUTCOMES = {"syn-unanswered", "refused", "icmp-unreachable", "reset", "closed", "open"}
KEY_FRAMES = ["dns_query", "dns_response", "syn", "syn_ack", "x224_request", "x224_confirm",
              "client_hello", "server_hello", "certificate", "alert", "icmp", "rst", "fin",
              "last", "proxy_request", "proxy_reply"]
CLIENT_CODE_WORDS = {"local", "negotiation", "security", "protocol"}
CONFIDENCE = {"high", "medium", "low"}
DETAILS = {"negotiation_failure", "requested_protocols", "selected_protocol", "tls_alert",
           "tls_version", "icmp", "dns", "rst_ttl", "server_ttl", "credssp", "service", "proxy"}
NEG_FAILURES = {1: "SSL_REQUIRED_BY_SERVER", 2: "SSL_NOT_ALLOWED_BY_SERVER",
                3: "SSL_CERT_NOT_ON_SERVER", 4: "INCONSISTENT_FLAGS",
                5: "HYBRID_REQUIRED_BY_SERVER", 6: "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER"}
TLS_VERSIONS = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
ATTEMPT_ORDER = ["client", "server", "server_port", "tcp", "label", "cause", "stage",
                 "ended_by", "confidence", "client_code", "remediation", "key_frames", "evidence",
                 "details"]
TOP_ORDER = ["schema", "name", "description", "script", "software", "client_command",
             "client_error", "keys", "purpose_built_peer", "attempts"]

RAW_FIELDS = ["frame.number", "tcp.stream", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
              "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin",
              "tcp.flags.reset", "tcp.len", "ip.ttl", "ipv6.hlim", "icmp.type", "icmp.code",
              "icmpv6.type", "icmpv6.code", "cotp.type", "rdp.negReq.requestedProtocols",
              "rdp.negReq.selectedProtocol", "rdp.negFailure.failureCode", "dns.id",
              "dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.a", "dns.aaaa",
              "socks.version", "socks.command", "socks.dst", "socks.dstV6", "socks.remote_name",
              "socks.port", "socks.dstport", "socks.results", "http.request.method", "http.request.uri",
              "http.response.code"]
TLS_FIELDS = ["frame.number", "tls.handshake.type", "tls.alert_message.level",
              "tls.alert_message.desc", "tls.handshake.version",
              "tls.handshake.extensions.supported_version", "credssp.errorCode"]


def fail(msg):
    print(f"expected.py: {msg}", file=sys.stderr)
    sys.exit(1)


def tshark(pcap, fields, extra):
    cmd = ["tshark", "-n", "-r", pcap, *extra, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        vals = line.split("\t")
        vals += [""] * (len(fields) - len(vals))
        rows.append({f: (v.split("|") if v else []) for f, v in zip(fields, vals)})
    return rows


def num(v):
    return int(v, 0)


class Frame:
    """One frame: the fields of both tshark passes, first occurrence unless asked."""

    def __init__(self, raw, tls):
        self.f = dict(raw)
        if tls:
            self.f.update({k: v for k, v in tls.items() if k != "frame.number"})
        self.no = int(raw["frame.number"][0])

    def all(self, name):
        return self.f.get(name, [])

    def first(self, name):
        v = self.f.get(name, [])
        return v[0] if v else None

    def has(self, name):
        return bool(self.f.get(name))

    def flag(self, name):
        return self.first(name) in ("1", "True")

    @property
    def src(self):
        return self.first("ip.src") or self.first("ipv6.src")

    @property
    def ttl(self):
        v = self.first("ip.ttl") or self.first("ipv6.hlim")
        return int(v) if v else None

    @property
    def is_icmp(self):
        return self.has("icmp.type") or self.has("icmpv6.type")


def load(pcap, keys, tls_ports):
    # X.224 view: 3389 is TPKT by default, other RDP ports are decoded as TPKT explicitly
    # An HTTP answer shows where its head ends (a proxy's refusal page is not waited for).
    raw = tshark(pcap, RAW_FIELDS,
                 [a for p in tls_ports if p != "3389" for a in ("-d", f"tcp.port=={p},tpkt")]
                 + ["-o", "http.desegment_body:FALSE"])
    extra = []
    for p in tls_ports:
        extra += ["-d", f"tcp.port=={p},tls"]
    clear = list(extra)
    if keys:
        extra += ["-o", f"tls.keylog_file:{keys}"]
    tls = {r["frame.number"][0]: r for r in tshark(pcap, TLS_FIELDS, extra)}
    frames = [Frame(r, tls.get(r["frame.number"][0])) for r in raw]
    # Handshake types as the wire shows them without keys (a TLS 1.3 Certificate is encrypted).
    types = {r["frame.number"][0]: r.get("tls.handshake.type", [])
             for r in tshark(pcap, ["frame.number", "tls.handshake.type"], clear)}
    for fr in frames:
        fr.clear_types = types.get(str(fr.no), [])
    return frames


def find_attempts(frames, server, port):
    """TCP streams whose SYN (no ACK) goes to server:port, in order of that SYN."""
    seen = {}
    for fr in frames:
        if fr.is_icmp or not fr.has("tcp.stream"):
            continue
        dst = fr.first("ip.dst") or fr.first("ipv6.dst")
        if (fr.flag("tcp.flags.syn") and not fr.flag("tcp.flags.ack") and dst == server
                and fr.first("tcp.dstport") == str(port)):
            s = int(fr.first("tcp.stream"))
            seen.setdefault(s, fr)
    return sorted(seen.items(), key=lambda kv: kv[1].no)


def dns_before(frames, syn_no, after_no, address):
    """First DNS query (answered with `address`) between after_no and the SYN."""
    responses = [fr for fr in frames if after_no < fr.no < syn_no and fr.has("dns.id")
                 and fr.first("dns.flags.response") in ("1", "True")
                 and address in fr.all("dns.a") + fr.all("dns.aaaa")]
    if not responses:
        return None, None
    resp = responses[0]
    queries = [fr for fr in frames if after_no < fr.no < resp.no and fr.has("dns.id")
               and fr.first("dns.flags.response") in ("0", "False")
               and fr.first("dns.id") == resp.first("dns.id")]
    return (queries[0] if queries else None), resp


def analyse(frames, stream, syn, server, port, prev_first):
    """Everything the wire says about one attempt."""
    own = [fr for fr in frames if fr.first("tcp.stream") == str(stream)]
    tcp = [fr for fr in own if not fr.is_icmp]
    icmp = [fr for fr in own if fr.is_icmp]
    client = syn.src

    def c2s(fr):
        return fr.src == client

    def first(pred, frs=tcp):
        for fr in frs:
            if pred(fr):
                return fr
        return None

    a = {"client": client, "frames": own}
    a["syn"] = syn
    a["syn_ack"] = first(lambda f: f.flag("tcp.flags.syn") and f.flag("tcp.flags.ack"))
    a["rst"] = first(lambda f: f.flag("tcp.flags.reset"))
    a["fin"] = first(lambda f: f.flag("tcp.flags.fin"))
    a["icmp"] = icmp[0] if icmp else None
    a["x224_request"] = first(lambda f: c2s(f) and f.first("cotp.type") == "0x0e")
    a["x224_confirm"] = first(lambda f: not c2s(f) and f.first("cotp.type") == "0x0d")
    a["client_hello"] = first(lambda f: c2s(f) and "1" in f.all("tls.handshake.type"))
    a["server_hello"] = first(lambda f: not c2s(f) and "2" in f.all("tls.handshake.type"))
    a["certificate"] = first(lambda f: not c2s(f) and "11" in f.clear_types)
    a["alert"] = first(lambda f: "2" in f.all("tls.alert_message.level"))
    a["last"] = own[-1]
    a["proxy_request"] = first(lambda f: c2s(f) and (f.first("socks.command") == "1"
                                                     or f.first("http.request.method") == "CONNECT"))
    a["proxy_reply"] = first(lambda f: not c2s(f) and (f.has("socks.results") or f.has("http.response.code")))
    q, r = dns_before(frames, syn.no, prev_first, server)
    a["dns_query"], a["dns_response"] = q, r

    # TCP facts
    established = a["syn_ack"] is not None
    if not established:
        if a["rst"] is not None:
            outcome = "refused"
        elif icmp:
            outcome = "icmp-unreachable"
        else:
            outcome = "syn-unanswered"
    else:
        ends = [f for f in (a["fin"], a["rst"]) if f is not None]
        if not ends:
            outcome = "open"
        else:
            outcome = "closed" if min(ends, key=lambda f: f.no) is a["fin"] else "reset"
    a["tcp"] = {"outcome": outcome, "established": established}

    # details the wire can show
    d = {}
    req = first(lambda f: f.has("rdp.negReq.requestedProtocols"))
    if req:
        d["requested_protocols"] = num(req.first("rdp.negReq.requestedProtocols"))
    sel = first(lambda f: f.has("rdp.negReq.selectedProtocol"))
    if sel:
        d["selected_protocol"] = num(sel.first("rdp.negReq.selectedProtocol"))
    nf = first(lambda f: f.has("rdp.negFailure.failureCode"))
    if nf:
        code = num(nf.first("rdp.negFailure.failureCode"))
        d["negotiation_failure"] = NEG_FAILURES.get(code, f"0x{code:08X}")
    if a["alert"]:
        al = a["alert"]
        d["tls_alert"] = {"level": 2,
                          "description": int(al.all("tls.alert_message.desc")[
                              al.all("tls.alert_message.level").index("2")]),
                          "sender": "client" if c2s(al) else "server"}
    sh = a["server_hello"]
    if sh:
        v = sh.first("tls.handshake.extensions.supported_version") or sh.first("tls.handshake.version")
        if v:
            d["tls_version"] = TLS_VERSIONS.get(num(v), v)
    if icmp:
        fr = icmp[0]
        t = fr.first("icmp.type") or fr.first("icmpv6.type")
        c = fr.first("icmp.code") or fr.first("icmpv6.code")
        d["icmp"] = {"type": int(t), "code": int(c), "from": fr.src}
    if a["rst"]:
        d["rst_ttl"] = a["rst"].ttl
    srv = [f for f in tcp if not c2s(f) and not f.flag("tcp.flags.reset")]
    if srv:
        d["server_ttl"] = srv[0].ttl
    err = first(lambda f: f.has("credssp.errorCode"))
    if err:
        d["credssp"] = {"ntstatus": "0x%08X" % (num(err.first("credssp.errorCode")) & 0xFFFFFFFF)}
    if r:
        d["dns"] = {"name": r.first("dns.qry.name"), "address": server}
    proxy = proxy_details(tcp, c2s)
    if proxy:
        d["proxy"] = proxy
    a["wire_details"] = d
    return a


def proxy_details(tcp, c2s):
    """A SOCKS or HTTP CONNECT preamble as tshark reads it: kind, target, the proxy's reply."""
    req = next((f for f in tcp if c2s(f) and f.first("socks.command") == "1"), None)
    if req:
        host = req.first("socks.remote_name") or req.first("socks.dst") or req.first("socks.dstV6")
        kind = "socks5" if req.first("socks.version") == "5" else "socks4"
        rep = next((f for f in tcp if not c2s(f) and f.has("socks.results")), None)
        return {"kind": kind, "target": f"{host}:{req.first('socks.port') or req.first('socks.dstport')}",
                "reply": num(rep.first("socks.results")) if rep else None}
    req = next((f for f in tcp if c2s(f) and f.first("http.request.method") == "CONNECT"), None)
    if req:
        rep = next((f for f in tcp if not c2s(f) and f.has("http.response.code")), None)
        return {"kind": "http", "target": req.first("http.request.uri"),
                "reply": num(rep.first("http.response.code")) if rep else None}
    return None


def main():
    ap = argparse.ArgumentParser()
    for a in ("name", "script", "client", "server", "client-command", "client-error", "keys",
              "pcap", "out"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--tls-ports", default="3389")
    args = ap.parse_args()
    spec = json.loads(sys.stdin.read(), strict=False)  # descriptions may span lines

    keyfile = args.keys if args.keys not in ("", "false") else None
    frames = load(args.pcap, keyfile, args.tls_ports.split())
    if not frames:
        fail("empty capture")
    server = spec.pop("server")
    port = int(spec.pop("server_port", 3389))
    designed = spec.pop("attempts")
    found = find_attempts(frames, server, port)
    if len(found) != len(designed):
        fail(f"the scenario designed {len(designed)} attempt(s) to {server}:{port}, "
             f"the wire has {len(found)}")

    attempts = []
    prev_first = 0
    for i, ((stream, syn), want) in enumerate(zip(found, designed)):
        where = f"attempt {i + 1} (tcp.stream {stream})"
        a = analyse(frames, stream, syn, server, port, prev_first)
        for k in ("label", "cause", "stage", "ended_by", "tcp", "key_frames"):
            if k not in want:
                fail(f"{where}: the scenario did not say {k}")
        if want["label"] not in LABELS:
            fail(f"{where}: bad label {want['label']}")
        if want["cause"] not in CAUSES:
            fail(f"{where}: bad cause {want['cause']}")
        if want["stage"] not in STAGES:
            fail(f"{where}: bad stage {want['stage']}")
        if want["ended_by"] not in ENDED_BY:
            fail(f"{where}: bad ended_by {want['ended_by']}")
        if (want["label"] == "success") != (want["cause"] == "none"):
            fail(f"{where}: label success goes with cause none, and only it")
        if want["tcp"] == "auto":  # a scenario whose TCP ending depends on timing
            want["tcp"] = a["tcp"]
        if want["tcp"].get("outcome") not in OUTCOMES:
            fail(f"{where}: bad tcp outcome {want['tcp']}")
        if want["tcp"] != a["tcp"]:
            fail(f"{where}: designed tcp {want['tcp']} but the wire shows {a['tcp']}")

        kf = {}
        for name in want["key_frames"]:
            if name not in KEY_FRAMES:
                fail(f"{where}: unknown key frame {name}")
            fr = a.get(name)
            if fr is None:
                fail(f"{where}: key frame {name} is not on the wire")
            kf[name] = fr.no
        kf = {k: kf[k] for k in KEY_FRAMES if k in kf}
        if "last" in kf and any(v > kf["last"] for v in kf.values()):
            fail(f"{where}: a key frame lies after 'last': {kf}")

        verdict = {}
        if "confidence" in want:
            if want["confidence"] not in CONFIDENCE:
                fail(f"{where}: bad confidence {want['confidence']}")
            verdict["confidence"] = want["confidence"]
        if "client_code" in want:
            code = want["client_code"]
            if not (code is None or code in CLIENT_CODE_WORDS or re.fullmatch(r"(0x[0-9A-F]+|errorInfo)(/0x[0-9A-F]+)?", code)):
                fail(f"{where}: bad client_code {code!r}")
            if (code is None) != (want["label"] in ("success", "incomplete")):
                fail(f"{where}: only success and incomplete have no client code")
            verdict["client_code"] = code
        if "remediation" in want:
            verdict["remediation"] = want["remediation"]
        if "evidence" in want:
            for name in want["evidence"]:
                if name not in kf:
                    fail(f"{where}: evidence {name} is not one of the key frames {sorted(kf)}")
            verdict["evidence"] = want["evidence"]

        details = {}
        wire = a["wire_details"]
        for k, v in want.get("details", {}).items():
            if k not in DETAILS:
                fail(f"{where}: unknown detail {k}")
            if v == "auto":
                if k not in wire:
                    fail(f"{where}: detail {k} is not on the wire")
                details[k] = wire[k]
            else:
                if k in wire and k not in ("service",) and wire[k] != v:
                    fail(f"{where}: designed {k}={v!r} but the wire shows {wire[k]!r}")
                details[k] = v
        attempt = {
            "client": a["client"], "server": server, "server_port": port, "tcp": a["tcp"],
            "label": want["label"], "cause": want["cause"], "stage": want["stage"],
            "ended_by": want["ended_by"], "key_frames": kf, "details": details, **verdict,
        }
        attempts.append({k: attempt[k] for k in ATTEMPT_ORDER if k in attempt})
        prev_first = syn.no

    doc = {
        "schema": 1,
        "name": args.name,
        "description": " ".join(spec.pop("description").split()),
        "script": args.script,
        "software": {"client": args.client, "server": args.server},
        "client_command": args.client_command,
        "client_error": args.client_error.strip("\n"),
        "keys": keyfile is not None,
        "purpose_built_peer": spec.pop("purpose_built_peer", None),
        "attempts": attempts,
    }
    needs_keys = spec.pop("verdict_needs_keys", None)
    if needs_keys is not None and keyfile is None:
        fail("verdict_needs_keys without a key log")
    for k, v in spec.items():  # scenario overrides of common fields (software, ...)
        if k not in TOP_ORDER:
            fail(f"unknown top-level field {k}")
        doc[k] = v
    if "/p:" in doc["client_command"] and "/p:***" not in doc["client_command"]:
        fail("client_command shows a password")
    doc = {k: doc[k] for k in TOP_ORDER}
    if needs_keys is not None:  # only where a scenario says so: other files stay as they were
        doc = {**{k: doc[k] for k in TOP_ORDER[:TOP_ORDER.index("keys") + 1]},
               "verdict_needs_keys": bool(needs_keys),
               **{k: doc[k] for k in TOP_ORDER[TOP_ORDER.index("keys") + 1:]}}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
