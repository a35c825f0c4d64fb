"""Which vendor public key a command pins: ``--vendor-key``, else
``NETMAP_LM_VENDOR_KEY``, else the demo key (SPEC §11).

Apart from the commands, and without click, so that ``netmap-lmstat`` finds
the key without loading every command of ``netmap-lm``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal, overload

from netmap_lm.cli.errors import config_error

VENDOR_KEY_ENV = "NETMAP_LM_VENDOR_KEY"


@overload
def vendor_key_path(given: str | None, *, required: Literal[True] = True) -> Path: ...


@overload
def vendor_key_path(given: str | None, *, required: bool) -> Path | None: ...


def vendor_key_path(given: str | None, *, required: bool = True) -> Path | None:
    """``--vendor-key``, else ``NETMAP_LM_VENDOR_KEY``, else the demo key (with a warning).

    With none of them, a configuration error; or None if not ``required``.
    """
    if given:
        return Path(given)
    env = os.environ.get(VENDOR_KEY_ENV)
    if env:
        return Path(env)
    from netmap_lm.cli.demo import demo_vendor_pub

    demo = demo_vendor_pub()
    if demo.exists():
        print(
            f"netmap-lm: warning: no --vendor-key given; using the demo vendor key {demo}",
            file=sys.stderr,
        )
        return demo
    if not required:
        return None
    raise config_error(
        f"no vendor key: pass --vendor-key vendor.pub or set {VENDOR_KEY_ENV} "
        "(or start 'netmap-lm serve --demo' once for the demo key)"
    )
