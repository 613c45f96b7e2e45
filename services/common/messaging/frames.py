"""Fewer system calls per AMQP message on the kit's own connections (the batch consumer, the outbox publisher).

py-amqp reads each frame's header, payload and end byte with a recv of exactly that size — nine recvs per
message, each an eventlet trampoline in the services — and writes each published message with its own sendall;
its `drain_events` handles one message per call, setting the socket's timeout and restoring it each time.
Neither changes what is sent or acknowledged: the bytes are the same, only gathered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

READ_CHUNK = 16384  # bytes asked of the socket at once; py-amqp keeps what a frame did not need for the next
WRITE_CHUNK = 131072  # bytes of published frames gathered before one sendall


def buffer_reads(connection) -> None:
    """Let one recv bring many frames on a connected py-amqp connection (TCP or TLS: both transports keep what
    a read brought beyond the frame in their read buffer)."""
    transport = connection.transport
    recv = getattr(transport, "_quick_recv", None)
    if recv is not None:
        transport._quick_recv = lambda size: recv(max(size, READ_CHUNK))


FRAME_HEADER = 7  # type (1), channel (2), payload size (4); the payload and a frame-end byte follow


def drain_buffered(connection) -> int:
    """Handle the frames a read already brought into the transport's buffer, as `drain_events` would, but with no
    socket call and no timeout set and restored around each: after a read of READ_CHUNK bytes, a dozen messages
    wait there complete. Returns how many frames it handled; the first incomplete one stays for the next read."""
    transport = connection.transport
    handled = 0
    while True:
        buffered = transport._read_buffer
        if len(buffered) < FRAME_HEADER or len(buffered) < FRAME_HEADER + 1 + int.from_bytes(buffered[3:7], "big"):
            return handled
        connection.on_inbound_frame(transport.read_frame())
        handled += 1


@contextmanager
def gathered_writes(connection) -> Iterator[None]:
    """Frames written inside the block go out in sendalls of about WRITE_CHUNK bytes, the rest when it ends.

    Only for writes that wait for no answer (basic_publish on a confirm channel): a synchronous method inside
    the block would wait for a reply to a request not yet sent."""
    transport = connection.transport
    send = transport._write
    pending: list[bytes] = []
    size = 0

    def gather(data) -> None:
        nonlocal size
        pending.append(bytes(data))  # py-amqp passes a view of a buffer it reuses for the next frame
        size += len(data)
        if size >= WRITE_CHUNK:
            flush()

    def flush() -> None:
        nonlocal size
        if pending:
            data = b"".join(pending)
            pending.clear()
            size = 0
            send(data)

    transport._write = gather
    try:
        yield
    finally:
        transport._write = send
    flush()  # not on an exception: the batch failed and is published again on a fresh connection
