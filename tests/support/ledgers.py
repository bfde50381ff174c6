"""Ledger lines that scenarios record, printed together at the end of the run (see tests/conftest.py)."""

LEDGERS: list[str] = []
