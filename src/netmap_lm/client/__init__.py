"""The client library applications embed (SPEC §9).

Kept light on purpose: an application pays for importing it and for one
checkout at every start, so it uses the C-level ``_socket`` and ``_thread``
modules instead of ``socket`` and ``threading`` (which cost more to import
than everything else here together), JSON and base64url without the ``json``
package and ``binascii`` (``netmap_lm.encoding``), and loads ``ssl`` only for
TLS, ``struct`` only once heartbeats start, and ``json`` and
``client/borrow.py`` only for borrows.  ``cryptography``, the largest import
of all, is loaded by the first checkout once its request is on the wire, so
it runs while the server answers (``licensing/trust.py``); the asyncio client
loads it with its module instead, to keep it off the caller's event loop.
"""
