"""The ``netmap-lm`` command line (SPEC §11)."""
