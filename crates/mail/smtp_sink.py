#!/usr/bin/env python3
"""A real SMTP server on loopback for Coachdesk's mail tests and demo mode.

Every message accepted is written to OUT_DIR as NAME.eml (the raw bytes) and NAME.json
(envelope, Message-ID, subject, plain-text and HTML parts, decoded), each written to a
temporary name first and renamed, so a reader never sees half a file.

    python3 smtp_sink.py --port 2525 --out DIR [--user U --password P]

Prints "READY <port>" on stdout once it accepts connections; stops on SIGTERM or SIGINT.
With --user, AUTH (PLAIN or LOGIN) is required and a wrong password gets
"535 5.7.8 Authentication credentials invalid". Needs aiosmtpd:
    python3 -m pip install aiosmtpd==1.4.6
"""

import argparse
import email
import email.policy
import json
import os
import signal
import sys
import threading
import time
import warnings

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    sys.stderr.write(
        "aiosmtpd is missing: install it with `python3 -m pip install aiosmtpd==1.4.6`\n"
    )
    sys.exit(3)

# AUTH without TLS is what a loopback test server is for; do not warn about it.
warnings.filterwarnings("ignore")


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    def _write(self, name, data):
        tmp = os.path.join(self.out_dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.out_dir, name))

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        with self.lock:
            self.count += 1
            name = "%d-%d-%04d" % (time.time_ns(), os.getpid(), self.count)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "file": name + ".eml",
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "message_id": str(msg.get("Message-ID", "")),
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "reply_to": str(msg.get("Reply-To", "")),
            "subject": str(msg.get("Subject", "")),
            "date": str(msg.get("Date", "")),
            "content_type": msg.get_content_type(),
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        self._write(name + ".eml", raw)
        self._write(name + ".json", json.dumps(record, indent=1).encode("utf-8"))
        return "250 OK stored as " + name


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    return check


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the sink only listens on loopback")
    os.makedirs(args.out, exist_ok=True)

    kwargs = {}
    if args.user is not None:
        kwargs = dict(
            authenticator=authenticator(args.user, args.password or ""),
            auth_required=True,
            auth_require_tls=False,
        )
    controller = Controller(
        Sink(args.out), hostname=args.host, port=args.port, ready_timeout=10, **kwargs
    )
    controller.start()
    print("READY %d" % args.port, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    controller.stop()


if __name__ == "__main__":
    main()
