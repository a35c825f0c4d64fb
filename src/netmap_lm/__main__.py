"""``python -m netmap_lm`` is ``netmap-lm``."""

from netmap_lm.cli.main import entry

entry()
