"""The server's fast grant digest must equal the client's canonical one, always."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netmap_lm.protocol.messages import encode
from netmap_lm.protocol.trust import grant_digest
from netmap_lm.server.signer import fast_grant_digest

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
VALUES = st.one_of(TEXT, st.integers(-(2**63), 2**64 - 1), st.booleans(), st.none())


@given(st.dictionaries(TEXT, st.one_of(VALUES, st.lists(VALUES, max_size=4)), max_size=16))
def test_fast_digest_equals_the_canonical_one(grant):
    assert fast_grant_digest(grant) == grant_digest(grant)


@given(st.dictionaries(TEXT, VALUES, max_size=8))
def test_replies_are_one_line_of_json(message):
    import json

    line = encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == message


@given(
    st.binary(min_size=32, max_size=32),
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
)
def test_server_lease_token_equals_the_clients(key, lease_id):
    from netmap_lm.engine.seats import Lease
    from netmap_lm.protocol.trust import lease_token
    from netmap_lm.server.app import _lease_token

    lease = Lease(lease_id, "f", "1", "u", "h", "", 0, "", "l", 0, key)
    assert _lease_token(lease) == lease_token(key, lease_id).encode()
