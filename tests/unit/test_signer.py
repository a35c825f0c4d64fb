"""The server's fast grant digest must equal the client's canonical one, always."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netmap_lm.encoding import b64u_decode
from netmap_lm.licensing.trust import grant_digest
from netmap_lm.protocol.messages import encode
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
    from netmap_lm.licensing.trust import lease_token
    from netmap_lm.server.app import _lease_token

    lease = Lease(lease_id, "f", "1", "u", "h", "", 0, "", "l", 0, key)
    assert _lease_token(lease) == lease_token(key, lease_id).encode()


def test_seal_signs_every_waiting_grant_at_once_and_only_once():
    """A durable grant's reply is sealed as it leaves: every grant waiting then
    shares its signature; a grant added later waits for a later seal."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from netmap_lm.licensing.trust import batch_payload
    from netmap_lm.server.signer import GrantSigner

    key = Ed25519PrivateKey.generate()
    signer = GrantSigner(key)
    grants = [{"lease": str(n), "nonce": "ab" * 16} for n in range(3)]
    replies: list[dict] = [{"grant": g} for g in grants]
    signer.add(grants[0], replies[0])
    signer.add(grants[1], replies[1])
    assert "sig" not in replies[0] and "sig" not in replies[1]

    signer.seal(replies[1])
    assert replies[0]["sig"] == replies[1]["sig"]
    assert replies[0]["batch"] == [fast_grant_digest(g) for g in grants[:2]]
    key.public_key().verify(b64u_decode(replies[0]["sig"]), batch_payload(replies[0]["batch"]))

    signer.add(grants[2], replies[2])
    signer.seal(replies[0])  # already signed: nothing new is signed
    assert "sig" not in replies[2] and signer.signatures == 1
    signer.seal(replies[2])
    assert replies[2]["batch"] == [fast_grant_digest(grants[2])]
    assert (signer.signatures, signer.grants) == (2, 3)
