"""Seat accounting: pure, with the clock passed in (STYLE principle 1)."""
