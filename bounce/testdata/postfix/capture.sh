#!/usr/bin/env bash
# Regenerates ../postfix-*.eml: DSNs written by a real Postfix (Debian's,
# apt-get install postfix), run privately from its own config directory
# in DIR, relaying to a loopback go-smtp server (capture/) that refuses or
# defers the recipients. Nothing listens beyond 127.0.0.1:2601; the
# system's Postfix configuration is not touched. Run as root from the
# repository root: bash bounce/testdata/postfix/capture.sh
set -euo pipefail
DIR=${DIR:-/tmp/outbox-postfix}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$DIR" && mkdir -p "$DIR/etc" "$DIR/queue" "$DIR/data" "$DIR/out"
chown postfix "$DIR/data"
sed "s|@DIR@|$DIR|g" "$here/main.cf.in" > "$DIR/etc/main.cf"
# The packaged master.cf without the public smtpd listener, nothing chrooted.
grep -v '^#' /etc/postfix/master.cf.proto | grep -v '^smtp      inet' | grep -v '^$' > "$DIR/etc/master.cf"
grep -q '^postlog' "$DIR/etc/master.cf" || echo 'postlog   unix-dgram n  -       n       -       1       postlogd' >> "$DIR/etc/master.cf"
postconf -c "$DIR/etc" -F -e '*/*/chroot = n'
go build -o "$DIR/capture" "$here/capture"
(cd "$DIR/out" && exec "$DIR/capture" > "$DIR/capture.log" 2>&1) &
server=$!
trap 'postfix -c "$DIR/etc" stop >/dev/null 2>&1 || true; kill $server 2>/dev/null || true' EXIT
sleep 1
postfix -c "$DIR/etc" start
# The VERP return path of recipient 1 of message 0190a3b2-…, secret "k"×32.
RP=bounces+aeazbi5sprgx334bencwpcnlzxxqcru7vdy6uaxqyuloav5g@bounces.outbox.test
ENVID=0190a3b2-7c4d-7def-8123-456789abcdef
printf 'From: Alice <alice@outbox.test>\nTo: Nobody <nobody@dest.test>\nSubject: Hello from outbox\nMessage-ID: <postfix-capture-1@outbox.test>\nDate: Tue, 02 Dec 2025 00:55:00 +0000\n\nThis message goes to an address that does not exist.\n' |
	sendmail -C "$DIR/etc" -f "$RP" -N failure,delay -R hdrs -V "$ENVID" nobody@dest.test
printf 'From: Alice <alice@outbox.test>\nTo: carol@slow.dest.test\nSubject: Slow\nMessage-ID: <postfix-capture-2@outbox.test>\n\nThis one waits.\n' |
	sendmail -C "$DIR/etc" -f "$RP" -N failure,delay -R hdrs -V "$ENVID" carol@slow.dest.test
python3 - <<'PY' | sendmail -C "$DIR/etc" -f "$RP" -N failure -R full -V "$ENVID" nobody2@dest.test ok@fine.test
import base64
print("From: Alice <alice@outbox.test>\nTo: nobody2@dest.test, ok@fine.test\nSubject: =?utf-8?q?R=C3=BCckl=C3=A4ufer?=\nMessage-ID: <postfix-capture-3@outbox.test>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"att\"\n\n--att\nContent-Type: text/plain; charset=utf-8\n\nGrüße, see the attachment.\n--att\nContent-Type: application/octet-stream; name=\"data.bin\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"data.bin\"\n")
print(base64.encodebytes(bytes(range(256))*4).decode())
print("--att--")
PY
echo "waiting for the reports (the deferred message warns, then expires after 20 s)…"
for _ in $(seq 90); do
	[ "$(grep -l '^Subject: \(Undelivered\|Delayed\)' "$DIR"/out/*.eml 2>/dev/null | wc -l)" -ge 4 ] && break
	sleep 1
done
echo "captured in $DIR/out:"; grep -H '^Subject:' "$DIR"/out/*.eml
