"""A TCP proxy on loopback that a test can cut, slow down and restore: a database outage on
demand, without stopping the PostgreSQL server other test runs share.

Point the server under test at ``127.0.0.1:<proxy.port>`` instead of the database:

* :meth:`TcpProxy.cut` closes every forwarded connection (each side gets a reset, as when
  the database host goes away) and refuses new ones (accepted, then reset at once);
* :meth:`TcpProxy.delay` holds every chunk for some seconds in both directions (a slow
  database: each query round trip costs that long);
* :meth:`TcpProxy.restore` forwards normally again.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType


def _reset(connection: socket.socket) -> None:
    """Close with RST rather than FIN: the peer sees the connection fail, not end."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut = False
        self._delay = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.refused = 0  # connections refused while cut
        self._start(self._accept_loop)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- what tests call -----------------------------------------------------------------

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def restore(self) -> None:
        with self._lock:
            self._cut = False
        self._delay = 0.0

    def close(self) -> None:
        self._stop.set()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    # --- the forwarding ------------------------------------------------------------------

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            self._start(self._pump, client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    if self._delay:
                        time.sleep(self._delay)
                    peers[source].sendall(data)
        except (OSError, ValueError):
            return  # cut, or the other side went away
        finally:
            with self._lock:
                if (client, upstream) in self._pairs:
                    self._pairs.remove((client, upstream))
            client.close()
            upstream.close()
