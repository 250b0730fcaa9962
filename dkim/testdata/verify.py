#!/usr/bin/python3
"""Verifies the DKIM signatures of the message on stdin with dkimpy (an
implementation independent of ours; it knows Ed25519), looking keys up at
the DNS server on 127.0.0.1:PORT. Prints one line per signature:
    pass|fail DOMAIN SELECTOR ALGORITHM
then "overall pass|fail"."""
import re
import sys

import dkim
import dns.resolver

res = dns.resolver.Resolver(configure=False)
res.nameservers = ["127.0.0.1"]
res.port = int(sys.argv[1])


def txt(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    try:
        a = res.resolve(name, "TXT", lifetime=timeout)
    except dns.resolver.NXDOMAIN:
        return None
    return b"".join(a[0].strings)


msg = sys.stdin.buffer.read()
try:
    d = dkim.DKIM(msg)
except dkim.MessageFormatError as e:
    print("overall unparsable:", e)
    sys.exit(0)
sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
ok = bool(sigs)
for i, v in enumerate(sigs):
    tags = dict((m.group(1), re.sub(rb"\s", b"", m.group(2))) for m in re.finditer(rb"(\w+)\s*=\s*([^;]*)", v))
    try:
        passed = dkim.DKIM(msg).verify(idx=i, dnsfunc=txt)
    except dkim.DKIMException:
        passed = False
    ok = ok and passed
    print("pass" if passed else "fail", tags[b"d"].decode(), tags[b"s"].decode(), tags[b"a"].decode())
print("overall", "pass" if ok else "fail")
