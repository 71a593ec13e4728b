"""MqttTransport's login, TLS and stop_reading, each on a Mosquitto of the test's own."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import aiomqtt
import anyio
import pytest

from orderloom.actors import wire_codec
from orderloom.runtime import Address, Delivery, Envelope, TransportError, to_topic
from orderloom.runtime.mqtt import MqttTls, MqttTransport
from tests import broker
from tests.sim.world import OrderSpec, place

pytestmark = pytest.mark.integration

HANG_GUARD = 60.0  # real seconds: a guard against hangs, not a timing


def _password_file(folder: Path, user: str, password: str) -> Path:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        broker._missing("mosquitto_passwd is not on PATH")
    path = folder / "passwords"
    path.write_text("", encoding="utf-8")
    subprocess.run([tool, "-b", str(path), user, password], check=True, timeout=30)
    path.chmod(0o600)
    return path


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 it signed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        broker._missing("openssl is not on PATH")
    ca_key, ca, key, csr, cert = (folder / n for n in (
        "ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = folder / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=orderloom test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ):
        subprocess.run([openssl, *map(str, args)], check=True, timeout=60,
                       capture_output=True)
    return ca, cert, key


def _place(message_id: str) -> bytes:
    return wire_codec().encode_envelope(Envelope(
        message_id, None, None, None, Address("intake"), 1.0, place(OrderSpec(order_id="o1"))))


def _transport(port: int, **options: object) -> MqttTransport:
    return MqttTransport(wire_codec(), client_id=f"t{uuid.uuid4().hex[:12]}",
                         subscriptions=["intake"], port=port, **options)  # type: ignore[arg-type]


def test_a_login_is_required_and_accepted(tmp_path: Path) -> None:
    """On a broker that refuses anonymous clients, the right login connects and a
    wrong one is a TransportError naming the connect."""
    passwords = _password_file(tmp_path, "serve", "s3cret-pass")
    with broker.own_broker(tmp_path, anonymous=False,
                           listener_extra=f"password_file {passwords}\n") as (_, port):
        async def main() -> None:
            with anyio.fail_after(HANG_GUARD):
                async with _transport(port, username="serve", password="s3cret-pass") as t:
                    assert t.connected
                with pytest.raises(TransportError) as caught:
                    async with _transport(port, username="serve", password="wrong"):
                        pass
                assert caught.value.operation == "connect"
                with pytest.raises(TransportError):
                    async with _transport(port):
                        pass

        anyio.run(main, backend="asyncio")


def test_tls_with_the_brokers_ca_connects(tmp_path: Path) -> None:
    """Over a TLS listener, a transport given the CA that signed the broker's
    certificate connects and carries messages."""
    ca, cert, key = _certificates(tmp_path)
    extra = f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    with broker.own_broker(tmp_path, listener_extra=extra) as (_, port):
        async def main() -> None:
            with anyio.fail_after(HANG_GUARD):
                async with _transport(port, tls=MqttTls(ca_file=str(ca))) as t:
                    assert t.connected
                    envelope = wire_codec().decode_envelope(_place("m1"))
                    await t.publish(envelope)  # to our own subscription, over TLS
                    async for delivery in t.deliveries():
                        assert delivery.envelope.message_id == "m1"
                        delivery.ack()
                        break

        anyio.run(main, backend="asyncio")


def test_a_tls_client_certificate_needs_its_key() -> None:
    """MqttTls refuses a certificate without its key."""
    with pytest.raises(ValueError, match="go together"):
        MqttTls(cert_file="client.pem")


def test_stop_reading_leaves_later_messages_with_the_broker(tmp_path: Path) -> None:
    """After stop_reading the deliveries end while publishing still works, and a
    message that came meanwhile is delivered to the session's next connection."""
    client_id = f"t{uuid.uuid4().hex[:12]}"
    with broker.own_broker(tmp_path, persistence=True) as (_, port):
        async def shop(message_id: str) -> None:
            async with aiomqtt.Client("127.0.0.1", port, identifier=f"{client_id}-shop") as c:
                await c.publish(to_topic("intake"), _place(message_id), qos=1)

        async def main() -> None:
            with anyio.fail_after(HANG_GUARD):
                transport = MqttTransport(wire_codec(), client_id=client_id,
                                          subscriptions=["intake"], port=port)
                async with transport:
                    await shop("m1")
                    got: list[Delivery] = []
                    async for delivery in transport.deliveries():
                        got.append(delivery)
                        delivery.ack()
                        transport.stop_reading()
                    # The loop ended: stop_reading closed the stream of deliveries.
                    assert [d.envelope.message_id for d in got] == ["m1"]
                    await shop("m2")  # accepted by the broker (PUBACK), not read by us
                    assert transport.connected
                again = MqttTransport(wire_codec(), client_id=client_id,
                                      subscriptions=["intake"], port=port)
                async with again:
                    async for delivery in again.deliveries():
                        assert delivery.envelope.message_id == "m2"
                        delivery.ack()
                        break

        anyio.run(main, backend="asyncio")
