"""How long the fuzzers run.

By default they are part of ``make test`` and stay short.  ``make fuzz`` sets
``NETMAP_LM_FUZZ_SECONDS`` (e.g. 120): the socket fuzz then runs that long and
each hypothesis property tries proportionally more examples.
``NETMAP_LM_FUZZ_SEED`` replays one socket fuzz run (the seed is printed on
failure).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_SECONDS = float(os.environ.get("NETMAP_LM_FUZZ_SECONDS") or 0)
SOCKET_FUZZ_SECONDS = FUZZ_SECONDS or 4.0  # seconds of socket fuzz against a real server
EXAMPLES = max(100, int(FUZZ_SECONDS * 10))  # hypothesis examples per property
# pytest-timeout for each fuzz test: the default 120 s, or more for long runs.
TIMEOUT = max(120.0, 2 * FUZZ_SECONDS + 60)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a 2-core box under load: time is not a property of a parser
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
