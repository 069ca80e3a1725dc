#!/usr/bin/env python3
"""aardwolf_kerberos_client.py: one NLA logon with Kerberos through aardwolf (PyPI), the lab's
client for what FreeRDP 2.11.7 cannot send (Debian builds it without GSS-API, so its CredSSP
is NTLM only: captures/lab/README.md).

aardwolf's CredSSP wraps minikerberos' AP-REQ in SPNEGO. The client connects by HOST (resolved
by the system resolver, i.e. the lab's DNS) and presents the ticket for termsrv/HOST in REALM
from the credential cache CCACHE to whatever answers at HOST. The ticket comes from the cache,
not from minikerberos' own TGS-REQ: MIT's KDC (1.20) refuses that request, whose authenticator
carries no checksum over the request body (KRB_AP_ERR_INAPP_CKSUM). Without a ticket for
termsrv/HOST in the cache, minikerberos asks the KDC itself (and fails against MIT).
Runs under the venv of install-pyclient.

Usage: aardwolf_kerberos_client.py --host NAME --realm REALM --user USER --kdc IP
       --ccache FILE [--timeout SECONDS]
Prints `ERROR: ...` when the connection fails (the lab's client_error), `connected` when it
does; exit status 0 connected, 1 refused or failed.
"""
import argparse
import asyncio
import os
import sys
from importlib.metadata import version
from urllib.parse import quote


async def attempt(args):
    from aardwolf.commons.factory import RDPConnectionFactory
    from aardwolf.commons.iosettings import RDPIOSettings

    settings = RDPIOSettings()
    # The URL form of aardwolf's factory (asyauth's credential, asysocks' target): Kerberos from
    # a credential cache (KRB5CCNAME, as MIT's tools use it), the KDC's address given (no DNS
    # SRV lookup), the realm as the account's domain, so the principal is termsrv/HOST@REALM.
    os.environ["KRB5CCNAME"] = args.ccache
    url = (f"rdp+kerberos-ccache://{args.realm}\\{quote(args.user, safe='')}"
           f"@{args.host}/?dc={args.kdc}&timeout={args.timeout}")
    factory = RDPConnectionFactory.from_url(url, settings)
    conn = factory.get_connection(settings)
    try:
        ok, err = await asyncio.wait_for(conn.connect(), timeout=args.timeout)
    finally:
        try:
            await asyncio.wait_for(conn.terminate(), timeout=2)
        except Exception:
            pass
    return ok, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--realm", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--kdc", required=True)
    ap.add_argument("--ccache", required=True)
    ap.add_argument("--timeout", type=int, default=10)
    args = ap.parse_args()
    print(f"aardwolf {version('aardwolf')}, minikerberos {version('minikerberos')}: "
          f"termsrv/{args.host} in {args.realm} as {args.user}", flush=True)
    try:
        ok, err = asyncio.run(attempt(args))
    except Exception as e:  # aardwolf raises as well as returns errors
        ok, err = False, e
    if err is not None or not ok:
        text = f"{type(err).__name__}: {err}" if err is not None else "not connected"
        print(f"ERROR: {text}", flush=True)
        return 1
    print("connected", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
