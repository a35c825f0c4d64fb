"""Line framing limits and UDP heartbeat datagrams."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmap_lm.protocol import udp
from netmap_lm.protocol.framing import MAX_LINE_BYTES, LineBuffer, LineTooLong


def test_lines_split_across_reads():
    buf = LineBuffer()
    assert buf.feed(b'{"a"') == []
    assert buf.feed(b':1}\n{"b":2}\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert buf.pending_bytes == 4


def test_oversized_line_breaks_the_buffer_without_keeping_it():
    buf = LineBuffer()
    with pytest.raises(LineTooLong):
        for _ in range(MAX_LINE_BYTES // 1000 + 2):
            buf.feed(b"x" * 1000)
    assert buf.pending_bytes == 0
    with pytest.raises(LineTooLong):
        buf.feed(b"\n")


def test_line_of_exactly_the_limit_minus_newline_is_accepted():
    buf = LineBuffer(max_line=10)
    assert buf.feed(b"x" * 9 + b"\n") == [b"x" * 9]
    with pytest.raises(LineTooLong):
        LineBuffer(max_line=10).feed(b"x" * 10 + b"\n")


@given(st.lists(st.binary(max_size=200), max_size=30))
def test_framing_never_holds_more_than_the_limit(chunks):
    buf = LineBuffer(max_line=256)
    for chunk in chunks:
        try:
            for line in buf.feed(chunk):
                assert len(line) < 256
        except LineTooLong:
            return
        assert buf.pending_bytes < 256


@given(
    st.lists(st.lists(st.sampled_from([b"a", b"b", b"\n"]), max_size=40).map(b"".join), max_size=20)
)
def test_any_chunking_gives_the_lines_of_the_whole_stream(chunks):
    """Whole-line reads take a shortcut past the buffer; reads cut anywhere
    must still give exactly the stream's complete lines, in order."""
    buf = LineBuffer(max_line=1024)
    lines = [line for chunk in chunks for line in buf.feed(chunk)]
    *complete, rest = b"".join(chunks).split(b"\n")
    assert lines == complete
    assert buf.pending_bytes == len(rest)


KEY = os.urandom(32)
LEASE = os.urandom(16).hex()


def test_heartbeat_round_trip_and_ack_is_no_larger():
    data = udp.pack(udp.HEARTBEAT, LEASE, 7, KEY)
    assert len(data) == udp.DATAGRAM_BYTES
    assert udp.unpack_unverified(data) == (udp.HEARTBEAT, LEASE, 7)
    assert udp.authentic(data, KEY)
    ack = udp.pack(udp.ACK, LEASE, 7, KEY)
    assert len(ack) <= len(data)


def test_forged_or_mangled_datagrams_do_not_authenticate():
    data = udp.pack(udp.HEARTBEAT, LEASE, 7, KEY)
    assert not udp.authentic(data, os.urandom(32))
    flipped = bytearray(data)
    flipped[25] ^= 1  # the sequence number
    assert not udp.authentic(bytes(flipped), KEY)
    assert udp.unpack_unverified(data[:-1]) is None
    assert udp.unpack_unverified(b"XXXX" + data[4:]) is None


@given(st.binary(max_size=100))
def test_random_datagrams_are_dropped(data):
    parsed = udp.unpack_unverified(data)
    if parsed is not None:
        assert not udp.authentic(data, KEY)
