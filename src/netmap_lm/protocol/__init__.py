"""The netmap_lm wire protocol (SPEC §5, docs/protocol.md), sans-IO.

``framing`` cuts bytes into lines, ``messages`` validates requests,
``connection`` is the server side's per-connection state machine,
``trust`` signs and verifies hellos and grants, ``udp`` packs heartbeat
datagrams.  Nothing here opens a socket or reads a clock.
"""
