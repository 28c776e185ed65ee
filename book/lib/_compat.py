"""Fixes for third-party display glitches, applied once when `lib` is imported.

torchinfo 1.8 formats its units enum with an f-string. Since Python 3.11 that prints the member's name
("Total mult-adds (Units.MEGABYTES): 2.83") instead of its value ("Total mult-adds (M): 2.83"). The fix below
changes only how the enum prints, and only where the glitch is present.
"""
from __future__ import annotations


def fix_torchinfo_units() -> None:
    try:
        from torchinfo.enums import Units
    except ImportError:  # torchinfo is optional for the library itself
        return
    if f"{Units.MEGABYTES}" != Units.MEGABYTES.value:
        Units.__str__ = lambda self: str(self.value)
        Units.__format__ = lambda self, spec: format(str(self.value), spec)


fix_torchinfo_units()
