"""mDNS on the listen interface only, reporting each peer it finds.

py-libp2p's own mDNS binds every interface and reports finds to a process-wide
singleton; this one builds the same broadcaster and listener on a ``Zeroconf`` bound to
the host's listen address (loopback in tests) and calls ``on_found`` for each peer,
from zeroconf's thread. Zeroconf calls block (announcing takes a few hundred ms), so
``start`` and ``stop`` are run in a worker thread by the caller.
"""

from __future__ import annotations

from collections.abc import Callable

from libp2p.abc import IHost
from libp2p.discovery.mdns.broadcaster import PeerBroadcaster
from libp2p.discovery.mdns.listener import PeerListener
from libp2p.discovery.mdns.mdns import SERVICE_TYPE
from libp2p.discovery.mdns.utils import stringGen
from zeroconf import InterfaceChoice, Zeroconf

FoundHook = Callable[[str, tuple[str, ...]], None]  # (peer id, multiaddrs)


class _ReportingListener(PeerListener):
    def __init__(
        self, on_found: FoundHook, host: IHost, zeroconf: Zeroconf, service_name: str
    ) -> None:
        self._on_found = on_found
        super().__init__(host.get_peerstore(), zeroconf, SERVICE_TYPE, service_name)

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        super().add_service(zc, type_, name)
        found = self.discovered_services.get(name)
        if found is not None:
            peer_id = found[0]
            addrs = tuple(str(a) for a in self.peerstore.addrs(peer_id))
            self._on_found(str(peer_id), addrs)


class LocalMdns:
    def __init__(self, host: IHost, interface_ip: str | None, on_found: FoundHook) -> None:
        interfaces = InterfaceChoice.All if interface_ip in (None, "0.0.0.0") else [interface_ip]
        self._zeroconf = Zeroconf(interfaces=interfaces)
        service_name = f"{stringGen(63)}.{SERVICE_TYPE}"
        port = next(
            (
                int(a.value_for_protocol("tcp"))
                for a in host.get_transport_addrs()
                if "tcp" in [p.name for p in a.protocols()]
            ),
            0,
        )
        self._broadcaster = PeerBroadcaster(
            zeroconf=self._zeroconf,
            service_type=SERVICE_TYPE,
            service_name=service_name,
            peer_id=str(host.get_id()),
            port=port,
            host=host,
        )
        self._listener = _ReportingListener(on_found, host, self._zeroconf, service_name)

    def start(self) -> None:
        self._broadcaster.register()

    def stop(self) -> None:
        self._broadcaster.unregister()
        self._listener.stop()
        self._zeroconf.close()
