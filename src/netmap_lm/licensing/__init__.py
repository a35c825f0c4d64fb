"""Vendor and server keys, host ids and the signed license file (SPEC §3, §4)."""
