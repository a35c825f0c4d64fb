"""The netmap_lm wire protocol (SPEC §5, docs/protocol.md), sans-IO.

``framing`` cuts bytes into lines, ``messages`` validates requests,
``connection`` is the server side's per-connection state machine, ``udp``
packs heartbeat datagrams.  Nothing here opens a socket or reads a clock.
What hellos and grants are signed over is the trust chain's, in
``netmap_lm.licensing.trust``.
"""
