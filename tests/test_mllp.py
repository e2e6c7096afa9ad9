"""The MLLP listener on a real socket (an ephemeral port): stored, then AA with MSA-2; a resend stored once;
garbage, oversized, truncated and slow frames never take it down; peers outside the allow-list refused."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from carepath.api.mllp import LOCAL_ACCOUNT, ListenerConfig, MllpListener, tls_context
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.interop import hl7v2
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import User
from tests.support.certificates import Pem, authority, signed
from tests.support.mllp_messages import adt, encoded
from tests.support.mllp_peer import Running, exchange, inbox, msa, read_ack, settled

Start = Callable[..., "Running"]
CONFIG = ListenerConfig(max_frame_bytes=8192, read_timeout=0.5, idle_timeout=5.0, sweep_seconds=0.2)


@pytest.fixture
def start(engine: CarePath) -> Iterator[Start]:
    running: list[Running] = []

    def starting(config: ListenerConfig = CONFIG) -> Running:
        running.append(Running(engine, config))
        return running[-1]

    yield starting
    for item in running:
        item.close()


def test_a_message_is_stored_and_acknowledged_aa_with_msa_2(engine: CarePath, start: Start) -> None:
    running = start()
    with running.connect() as sock:
        assert exchange(sock, encoded(adt(control_id="ED-1", name="Ólafsdóttir^Guðrún"))) == ["MSA", "AA", "ED-1"]
    [row] = settled(engine)
    assert (row.control_id, row.account, row.peer) == ("ED-1", LOCAL_ACCOUNT, "127.0.0.1")
    assert row.state == "nothing_to_do" and "on an A03 with patient class E" in (row.outcome or "")
    assert "Guðrún" in (row.raw or "")
    with engine.db.read() as session:
        assert session.scalar(select(User.role).where(User.name == LOCAL_ACCOUNT)) == "integration"


def test_a_resend_is_acknowledged_again_and_stored_once(engine: CarePath, start: Start) -> None:
    running = start()
    message = encoded(adt(control_id="ED-2"))
    with running.connect() as sock:
        assert exchange(sock, message)[1:] == ["AA", "ED-2"]
    with running.connect() as sock:  # the sender lost the ACK, reconnected and sent it again
        assert exchange(sock, message)[1:] == ["AA", "ED-2"]
    assert [row.control_id for row in settled(engine)] == ["ED-2"]


def test_several_frames_in_one_write_are_answered_in_order(engine: CarePath, start: Start) -> None:
    running = start()
    with running.connect() as sock:
        sock.sendall(b"".join(hl7v2.frame(encoded(adt(control_id=f"B{n}", mrn=f"M{n}"))) for n in range(3)))
        assert [msa(read_ack(sock))[2] for _ in range(3)] == ["B0", "B1", "B2"]


def test_garbage_is_answered_and_the_connection_goes_on(engine: CarePath, start: Start) -> None:
    running = start()
    with running.connect() as sock:
        sock.sendall(b"junk before any frame")
        assert exchange(sock, b"hello, not HL7")[:3] == ["MSA", "AE", ""]
        assert exchange(sock, adt(charset="").encode() + "Zoë".encode())[1] == "AE"  # not ASCII
        assert exchange(sock, encoded(adt(version="2.1", control_id="OLD")))[1:3] == ["AR", "OLD"]
        assert exchange(sock, encoded(adt(control_id="OK-1")))[1:3] == ["AA", "OK-1"]
    assert [row.control_id for row in inbox(engine)] == ["OK-1"]


def test_an_oversized_frame_is_refused_and_the_listener_stays_up(engine: CarePath, start: Start) -> None:
    running = start()
    with running.connect() as sock:
        sock.sendall(hl7v2.START + b"MSH|" + b"x" * 10_000)
        ack = read_ack(sock)
        assert msa(ack)[1] == "AR" and "longer than 8192 bytes" in ack
        assert sock.recv(10) == b""  # closed after the answer
    with running.connect() as sock:
        assert exchange(sock, encoded(adt(control_id="AFTER")))[1] == "AA"


def test_truncated_and_slow_frames_are_dropped(engine: CarePath, start: Start) -> None:
    running = start()
    with running.connect() as sock:
        sock.sendall(hl7v2.START + encoded(adt(control_id="CUT"))[:40])  # and the sender goes away
    with running.connect() as slow:
        slow.sendall(hl7v2.START + b"MSH|^~\\&|")
        assert slow.recv(10) == b""  # the read timeout closed it
    with running.connect() as sock:
        assert exchange(sock, encoded(adt(control_id="NEXT")))[1] == "AA"
    assert [row.control_id for row in inbox(engine)] == ["NEXT"]


def test_a_peer_outside_the_allow_list_is_closed_unread(engine: CarePath, start: Start) -> None:
    running = start(replace(CONFIG, allowed_peers=(ipaddress.ip_network("10.0.0.0/8"),)))
    with running.connect() as sock:
        try:
            sock.sendall(hl7v2.frame(encoded(adt())))
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
    assert inbox(engine) == []


def test_senders_act_under_their_mapped_account_and_unmapped_remote_ones_are_refused(engine: CarePath) -> None:
    listener = MllpListener(engine, replace(CONFIG, senders={"EPIC^GENHOSP": "epic-feed"}))
    epic = hl7v2.inspect(encoded(adt())).header
    other = hl7v2.inspect(encoded(adt(sender="CERNER"))).header
    assert listener.account_for("10.1.2.3")(epic) == "epic-feed"
    assert listener.account_for("10.1.2.3")(other) is None
    assert listener.account_for("::ffff:127.0.0.1")(other) == LOCAL_ACCOUNT


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_with_an_mllp_port_acknowledges_and_processes(tmp_path: Path) -> None:
    """The README's one command: `carepath serve --mllp-port` on a fresh database, a local sender."""
    http_port, mllp_port = _free_port(), _free_port()
    env = {**os.environ, "CAREPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "CAREPATH_SWEEP_SECONDS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "carepath.api.cli", "serve", "--port", str(http_port),
                               "--mllp-port", str(mllp_port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            try:
                sock = socket.create_connection(("127.0.0.1", mllp_port), timeout=5)
                break
            except ConnectionRefusedError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.1)
        with sock:
            message = encoded(adt(control_id="SERVE-1", name="Ólafsdóttir^Guðrún"))
            assert exchange(sock, message)[1:3] == ["AA", "SERVE-1"]
            assert exchange(sock, message)[1:3] == ["AA", "SERVE-1"]
        engine = CarePath(Database(env["CAREPATH_DATABASE_URL"]), ManualClock())
        [row] = settled(engine)
        assert row.state == "nothing_to_do"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


def test_mllp_refuses_to_start_under_an_account_that_does_not_exist(tmp_path: Path) -> None:
    env = {**os.environ, "CAREPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
           "CAREPATH_MLLP_SENDERS": "EPIC^GENHOSP=epic-feed"}
    result = subprocess.run([sys.executable, "-m", "carepath.api.cli", "mllp", "--port", str(_free_port())],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1 and "user 'epic-feed' does not exist" in result.stderr
    assert "Traceback" not in result.stderr and "listener on" not in result.stdout


def test_mutual_tls_lets_in_only_senders_with_a_certificate_the_ca_signed(
        engine: CarePath, start: Start, tmp_path: Path) -> None:
    ca, ca_cert, ca_key = authority(tmp_path)
    server = signed(tmp_path, "listener", ca_cert, ca_key, server=True)
    client = signed(tmp_path, "hospital", ca_cert, ca_key, server=False)
    settings = Settings(mllp_tls_cert=str(server.cert), mllp_tls_key=str(server.key), mllp_tls_client_ca=str(ca.cert))
    running = start(replace(CONFIG, tls=tls_context(settings)))

    def connect(certificate: Pem | None) -> ssl.SSLSocket:
        context = ssl.create_default_context(cafile=str(ca.cert))
        if certificate is not None:
            context.load_cert_chain(str(certificate.cert), str(certificate.key))
        return context.wrap_socket(running.connect(), server_hostname="127.0.0.1")

    with connect(client) as sock:
        assert exchange(sock, encoded(adt(control_id="TLS-1")))[1:3] == ["AA", "TLS-1"]
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with connect(None) as sock:  # no client certificate: the handshake (or the first read) fails
            exchange(sock, encoded(adt(control_id="TLS-2")))
    assert [row.control_id for row in inbox(engine)] == ["TLS-1"]
