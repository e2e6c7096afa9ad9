"""A real MLLP peer for tests: the listener on an ephemeral port in a thread of its own, and a sender
that frames a message, reads the acknowledgement and waits for the inbox to settle."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from sqlalchemy import select

from carepath.api.mllp import ListenerConfig, MllpListener
from carepath.engine.application import CarePath
from carepath.engine.interop import hl7v2
from carepath.engine.persistence.tables import InboxMessage


class Running:
    def __init__(self, engine: CarePath, config: ListenerConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.listener = MllpListener(engine, config)
        self.port = asyncio.run_coroutine_threadsafe(self.listener.start("127.0.0.1", 0), self.loop).result(10)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def read_ack(sock: socket.socket) -> str:
    """One acknowledgement frame. Read a byte at a time: acknowledgements of messages sent together may
    arrive in one segment, and the next frame's bytes must stay on the socket for the next call."""
    data = b""
    while not data.endswith(hl7v2.END):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    assert data.startswith(hl7v2.START)
    return data[1:-2].decode("utf-8")


def msa(ack: str) -> list[str]:
    return next(line for line in ack.split("\r") if line.startswith("MSA")).split("|")


def exchange(sock: socket.socket, payload: bytes) -> list[str]:
    sock.sendall(hl7v2.frame(payload))
    return msa(read_ack(sock))


def inbox(engine: CarePath) -> list[InboxMessage]:
    with engine.db.read() as session:
        return list(session.scalars(select(InboxMessage).order_by(InboxMessage.id)))


def settled(engine: CarePath) -> list[InboxMessage]:
    """The inbox once the listener's worker has processed what it stored (it is woken after each commit)."""
    for _ in range(100):
        found = inbox(engine)
        if found and all(row.state != "received" for row in found):
            return found
        time.sleep(0.05)
    return inbox(engine)
