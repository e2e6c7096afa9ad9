"""The MLLP listener: HL7 v2 ADT from hospitals, over TCP (asyncio), into the inbox.

One listener per deployment: `carepath mllp --port PORT`, or `carepath serve --mllp-port PORT` beside the
API (started once, in the server's main process, whatever `--workers` says). For each connection:

- with CAREPATH_MLLP_TLS_* the connection is TLS and the peer must present a certificate the configured
  CA signed (mutual TLS): the handshake, bounded by the read timeout, comes first;
- the peer's address must be in CAREPATH_MLLP_ALLOWED_PEERS (loopback by default), else the connection is
  closed before any message is read;
- frames are read with a bound on their size and a timeout between reads; each message is checked, stored
  and answered by `usecases/inbox.acknowledge` on a worker thread, so that a slow commit holds up only its
  own connection. Garbage is answered AE, an oversized frame AR (and the connection closed), a truncated
  frame dropped: none of it reaches the listener itself;
- routing (usecases/inbox.process_inbox) happens apart from the acknowledgements: with `routing` (the
  default, and always on SQLite) on `InboxWorker` threads of this process, woken after each message is
  stored and sweeping the inbox periodically; without it (`carepath mllp` on PostgreSQL) in other
  processes — the listener's `carepath inbox-worker` children or `carepath worker` — that look for work
  every quarter second while idle (api/inbox_worker.py). The acknowledgement never waits for routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
import threading
import uuid
from dataclasses import dataclass, field

from carepath.engine.application import CarePath
from carepath.engine.interop import hl7v2
from carepath.engine.usecases.inbox import AccountFor, acknowledge, ensure_integration_account

from .inbox_worker import PG_ROUTING_THREADS, InboxWorker
from .settings import Settings, mllp_networks, mllp_senders

log = logging.getLogger("carepath.mllp")
LOCAL_ACCOUNT = "mllp-local"  # the built-in integration account of senders on this machine
READ_SIZE = 64 * 1024
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ListenerConfig:
    allowed_peers: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1"))
    senders: dict[str, str] = field(default_factory=dict)  # "APP^FACILITY" -> integration account
    max_frame_bytes: int = hl7v2.DEFAULT_MAX_FRAME_BYTES
    read_timeout: float = 30.0  # between reads while a frame is open
    idle_timeout: float = 600.0  # between frames
    policy: hl7v2.Policy = field(default_factory=hl7v2.Policy)
    tls: ssl.SSLContext | None = None
    sweep_seconds: float = 30.0
    routing: bool = True  # False: store and acknowledge only; other processes route (api/inbox_worker.py)
    processing_threads: int = 0  # 0: PG_ROUTING_THREADS on PostgreSQL, 1 on SQLite

    @classmethod
    def from_settings(cls, settings: Settings) -> ListenerConfig:
        ids = frozenset(p.strip().upper() for p in settings.mllp_processing_ids.split(",") if p.strip())
        return cls(allowed_peers=mllp_networks(settings.mllp_allowed_peers),
                   senders=mllp_senders(settings.mllp_senders), max_frame_bytes=settings.mllp_max_frame_bytes,
                   read_timeout=settings.mllp_read_timeout_seconds, idle_timeout=settings.mllp_idle_timeout_seconds,
                   policy=hl7v2.Policy(processing_ids=ids), tls=tls_context(settings),
                   sweep_seconds=settings.sweep_seconds)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.mllp_tls_cert or not settings.mllp_tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.mllp_tls_cert, settings.mllp_tls_key)
    if settings.mllp_tls_client_ca:
        context.load_verify_locations(settings.mllp_tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class MllpListener:
    def __init__(self, app: CarePath, config: ListenerConfig | None = None) -> None:
        self.app = app
        self.config = config or ListenerConfig()
        threads = self.config.processing_threads or (PG_ROUTING_THREADS if app.db.dialect == "postgresql" else 1)
        self.worker = InboxWorker(app, self.config.sweep_seconds, threads) if self.config.routing else None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def prepare(self) -> None:
        """The accounts senders act under: the built-in one created if missing, the configured ones checked."""
        ensure_integration_account(self.app, LOCAL_ACCOUNT, create=True)
        for account in sorted(set(self.config.senders.values())):
            ensure_integration_account(self.app, account, create=False)

    async def start(self, host: str = "127.0.0.1", port: int = 2575) -> int:
        """Listen (port 0: any free port); answers the port bound."""
        self.prepare()
        if self.worker is not None:
            self.worker.start()
        self._server = await asyncio.start_server(self._connection, host, port, limit=READ_SIZE, ssl=self.config.tls,
                                                  ssl_handshake_timeout=self.config.read_timeout if self.config.tls
                                                  else None)
        bound: int = self._server.sockets[0].getsockname()[1]
        log.info("MLLP listener on %s:%d%s", host, bound, " (mutual TLS)" if self.config.tls else "")
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):  # open connections end with the listener
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)

    def allowed(self, host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in network for network in self.config.allowed_peers)

    def account_for(self, host: str) -> AccountFor:
        loopback = bool((address := _address(host)) and address.is_loopback)

        def account(header: hl7v2.MshHeader) -> str | None:
            return self.config.senders.get(header.sender) or (LOCAL_ACCOUNT if loopback else None)

        return account

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        try:
            if not self.allowed(host):
                log.warning("MLLP connection from %s refused: not in CAREPATH_MLLP_ALLOWED_PEERS", host)
                return
            await self._converse(reader, writer, host)
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError) as exc:
            log.info("MLLP connection from %s closed: %s", host, type(exc).__name__)
        except Exception:  # one connection's trouble never takes the listener down
            log.exception("MLLP connection from %s failed", host)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        deframer = hl7v2.Deframer(self.config.max_frame_bytes)
        account_for = self.account_for(host)
        while True:
            timeout = self.config.read_timeout if deframer.in_frame else self.config.idle_timeout
            data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            if not data:
                return  # closed by the sender; a frame begun and not ended is dropped
            try:
                payloads = deframer.feed(data)
            except hl7v2.FrameTooLarge as exc:
                ack = hl7v2.build_ack(None, hl7v2.AckCode.REJECT, now=self.app.now(), control_id=uuid.uuid4().hex[:20],
                                      reason=f"{exc}; the message was not read", error_code="207")
                writer.write(hl7v2.frame(ack.encode("ascii")))
                await writer.drain()
                return
            for payload in payloads:
                answer = await asyncio.to_thread(acknowledge, self.app, payload, peer=host, account_for=account_for,
                                                 policy=self.config.policy)
                if self.worker is not None and answer.stored is not None and not answer.stored.duplicate:
                    self.worker.wake()
                if answer.ack is not None:
                    writer.write(hl7v2.frame(answer.ack))
                    await writer.drain()


def run_listener(app: CarePath, config: ListenerConfig, host: str, port: int,
                 stop: threading.Event | None = None, ready: threading.Event | None = None) -> None:
    """Listen until `stop` is set (the caller's signal handlers set it) or the process ends."""
    stop = stop or threading.Event()

    async def main() -> None:
        listener = MllpListener(app, config)
        await listener.start(host, port)
        if ready is not None:
            ready.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(0.2)
        finally:
            await listener.close()

    asyncio.run(main())


def start_beside_api(app: CarePath, config: ListenerConfig, host: str, port: int) -> threading.Thread:
    """`carepath serve --mllp-port`: the listener on a thread of the server's main process (once, not per
    HTTP worker). Its accounts are checked and its port bound before the API starts: a misconfiguration
    or a port in use stops `serve` with the reason."""
    MllpListener(app, config).prepare()
    ready, failed = threading.Event(), []

    def run() -> None:
        try:
            run_listener(app, config, host, port, None, ready)
        except Exception as exc:
            failed.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="carepath-mllp", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if failed or not ready.is_set():
        raise OSError(f"the MLLP listener could not listen on {host}:{port}: {failed[0] if failed else 'timed out'}")
    return thread
