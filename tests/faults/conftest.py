"""Fault scenarios print their ledgers at the end of the run."""

LEDGERS: list[str] = []


def pytest_terminal_summary(terminalreporter):
    """Print every scenario's ledger line."""
    if LEDGERS:
        terminalreporter.section("fault-injection ledgers")
        for line in LEDGERS:
            terminalreporter.write_line(line)
