#!/usr/bin/env python3
"""aardwolf_client.py: connect once with aardwolf (PyPI, a third-party Python RDP client) and
say how it ended. The lab's second client: FreeRDP 2.11.7 cannot use a server that selects
HYBRID_EX, aardwolf offers it (requestedProtocols 0xB) and reads the Early User Authorization
Result (MS-RDPBCGR 2.2.10.2).

Run with the python of captures/lab/install-pyclient's virtual environment:

    aardwolf_client.py --host 198.51.100.20 --user alice --password-file FILE [--domain D]
                       [--port 3389] [--timeout 10]

NTLM with a password (aardwolf's `rdp+ntlm-password` URL, built here so the password never
appears on a command line). TLS keys go to $SSLKEYLOGFILE in NSS format: aardwolf makes its TLS
context with Python's ssl.create_default_context(), which honours that variable.

Prints `aardwolf <version>`, then `connected` or `error: <aardwolf's error text>`, and the Early
User Authorization Result when the server sent one. Exit status: 0 connected, 1 aardwolf
reported an error, 2 no answer within --timeout.
"""
import argparse
import asyncio
import sys
from urllib.parse import quote

from aardwolf._version import __version__
from aardwolf.commons.factory import RDPConnectionFactory
from aardwolf.commons.iosettings import RDPIOSettings


async def attempt(args, password):
    user = f"{args.domain}\\{args.user}" if args.domain else args.user
    url = (f"rdp+ntlm-password://{quote(user, safe='')}:{quote(password, safe='')}"
           f"@{args.host}:{args.port}")
    iosettings = RDPIOSettings()
    iosettings.channels = []  # no virtual channels: the refusal comes before any
    conn = RDPConnectionFactory.from_url(url, iosettings).get_connection(iosettings)
    try:
        ok, err = await asyncio.wait_for(conn.connect(), timeout=args.timeout)
    except asyncio.TimeoutError:
        print(f"error: no answer within {args.timeout} s")
        return 2
    if conn.authz_result is not None:
        print(f"Early User Authorization Result: 0x{conn.authz_result:08X}")
    if err is not None:
        print(f"error: {err}")
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
    ap.add_argument("--password-file", required=True, help="the password (first line)")
    ap.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()
    with open(args.password_file, encoding="utf-8") as f:
        password = f.readline().rstrip("\n")
    print(f"aardwolf {__version__}", flush=True)
    sys.exit(asyncio.run(attempt(args, password)))


if __name__ == "__main__":
    main()
