"""Vendor and server keys, host ids, the signed license file and the trust
chain built on them (SPEC §3, §4).

``trust`` signs and verifies hellos and grants.  The client library loads it
and ``lines`` at every application start, so they live here, with the
license lines they verify, and not in ``protocol``: one package fewer for an
application to import (docs/performance.md, fifteenth session).
"""
