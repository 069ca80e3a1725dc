#!/usr/bin/env python3
"""aardwolf_client.py: connect once with aardwolf (PyPI, a third-party Python RDP client) and
say how it ended. The lab's second client, for what FreeRDP 2.11.7 cannot do: it offers
HYBRID_EX (requestedProtocols 0xB) and reads the Early User Authorization Result (MS-RDPBCGR
2.2.10.2), and its CredSSP can carry Kerberos (Debian builds FreeRDP without GSS-API).

Run with the python of captures/lab/install-pyclient's virtual environment:

    aardwolf_client.py --host HOST --user USER --password-file FILE [--domain D]
    aardwolf_client.py --host HOST --user USER --realm REALM --kdc IP --ccache FILE
    (both: [--port 3389] [--timeout 10])

NTLM with a password (aardwolf's `rdp+ntlm-password` URL, built here so the password never
appears on a command line), or Kerberos (`rdp+kerberos-ccache`): the ticket for termsrv/HOST in
REALM from the MIT credential cache FILE, presented to whatever answers at HOST (resolved by
the system resolver). The ticket comes from the cache, not from minikerberos' own TGS-REQ: MIT's
KDC (1.20) refuses that request, whose authenticator carries no checksum over the request body
(KRB_AP_ERR_INAPP_CKSUM).

TLS keys go to $SSLKEYLOGFILE in NSS format: aardwolf makes its TLS context with Python's
ssl.create_default_context(), which honours that variable.

Prints `aardwolf <version>`, then `connected` or `error: <aardwolf's error text>`, and the Early
User Authorization Result when the server sent one. Exit status: 0 connected, 1 aardwolf
reported an error, 2 no answer within --timeout.
"""
import argparse
import asyncio
import os
import sys
from importlib.metadata import version
from urllib.parse import quote

from aardwolf.commons.factory import RDPConnectionFactory
from aardwolf.commons.iosettings import RDPIOSettings


def url(args, password):
    if args.ccache:
        # Kerberos from a credential cache (KRB5CCNAME, as MIT's tools use it), the KDC's
        # address given (no DNS SRV lookup), the realm as the account's domain, so the
        # principal is termsrv/HOST@REALM.
        os.environ["KRB5CCNAME"] = args.ccache
        return (f"rdp+kerberos-ccache://{args.realm}\\{quote(args.user, safe='')}"
                f"@{args.host}:{args.port}/?dc={args.kdc}&timeout={int(args.timeout)}")
    user = f"{args.domain}\\{args.user}" if args.domain else args.user
    return (f"rdp+ntlm-password://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{args.host}:{args.port}")


async def attempt(args, password):
    iosettings = RDPIOSettings()
    iosettings.channels = []  # no virtual channels: the refusals come before any
    conn = RDPConnectionFactory.from_url(url(args, password), iosettings).get_connection(iosettings)
    try:
        ok, err = await asyncio.wait_for(conn.connect(), timeout=args.timeout)
    except asyncio.TimeoutError:
        print(f"error: no answer within {args.timeout} s")
        return 2
    except Exception as e:  # aardwolf raises as well as returns errors
        ok, err = False, f"{type(e).__name__}: {e}"
    if conn.authz_result is not None:
        print(f"Early User Authorization Result: 0x{conn.authz_result:08X}")
    if err is not None or not ok:
        print(f"error: {err if err is not None else 'not connected'}")
        try:
            await asyncio.wait_for(conn.terminate(), timeout=2)
        except Exception:
            pass
        return 1
    print("connected")
    await asyncio.wait_for(conn.terminate(), timeout=5)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=3389)
    ap.add_argument("--user", required=True)
    ap.add_argument("--domain", default="")
    ap.add_argument("--password-file", help="NTLM: the password (first line)")
    ap.add_argument("--ccache", help="Kerberos: the MIT credential cache holding termsrv/HOST's ticket")
    ap.add_argument("--realm", help="Kerberos: the account's realm")
    ap.add_argument("--kdc", help="Kerberos: the KDC's address")
    ap.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()
    password = ""
    if args.ccache:
        if not (args.realm and args.kdc):
            ap.error("--ccache needs --realm and --kdc")
    elif args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\n")
    else:
        ap.error("give --password-file (NTLM) or --ccache (Kerberos)")
    print(f"aardwolf {version('aardwolf')}, minikerberos {version('minikerberos')}", flush=True)
    sys.exit(asyncio.run(attempt(args, password)))


if __name__ == "__main__":
    main()
