"""How the bench says whether a figure met its target."""


def verdict(met: bool) -> str:
    """'met', or 'MISSED' in capitals so that a miss stands out in the output."""
    return "met" if met else "MISSED"
