"""Real aiosmtpd servers for the SMTP delivery tests: a recording handler and a port finder."""

import socket

from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd handler that keeps what it receives; `rcpt_reply` answers RCPT TO with a chosen code."""

    def __init__(self, rcpt_reply: str | None = None, refuse: tuple = (), defer: tuple = ()):
        self.rcpt_reply = rcpt_reply  # e.g. "550 5.1.1 <x>: mailbox unavailable" for every recipient
        self.refuse = set(refuse)  # refuse only these addresses (550)
        self.defer = set(defer)  # answer "try again later" (451) for these addresses
        self.received = []  # (mail_from, rcpt_tos, content bytes)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: user unknown"
        if address in self.defer:
            return f"451 4.7.1 <{address}>: Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"jmdi" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)
