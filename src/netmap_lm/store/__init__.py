"""Durable lease state (SPEC §6): every grant is on disk before its reply."""
