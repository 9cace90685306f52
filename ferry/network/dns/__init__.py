"""The embedded DNS server ferryd answers 127.0.0.11:53 with, inside every container's namespace.

``DnsServer`` is the whole public surface; ``wire`` (the byte-level format) and ``forward``
(relaying to the host's resolvers) are its internals, importable for tests.
"""

from ferry.network.dns.server import DnsServer, Lookup, ReverseLookup

__all__ = ["DnsServer", "Lookup", "ReverseLookup"]
