"""Which rows of each vendor's curated tables become FOCUS charges: the registry of the vendors' branches.

Each vendor's choices (which table, which metric, which quantity, what cost) are in its
``vendors/<vendor>/focus.py``, with the reasons; ``focus/branch.py`` says what a branch is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from report_exporter.focus.branch import Branch
from report_exporter.models.exports import ExportSpec, VendorName
from report_exporter.vendors.here import focus as here
from report_exporter.vendors.kore import focus as kore
from report_exporter.vendors.particle import focus as particle
from report_exporter.vendors.senet import focus as senet
from report_exporter.vendors.telnyx import focus as telnyx

BRANCHES: dict[VendorName, Callable[[Sequence[ExportSpec]], list[Branch]]] = {
    VendorName.PARTICLE: particle.branches,
    VendorName.HERE: here.branches,
    VendorName.TELNYX: telnyx.branches,
    VendorName.SENET: senet.branches,
    VendorName.KORE: kore.branches,
}


def branches(exports: Sequence[ExportSpec]) -> list[Branch]:
    """Every charge kind of every vendor, in vendor order."""
    return [branch for of_vendor in BRANCHES.values() for branch in of_vendor(exports)]


__all__ = ["BRANCHES", "branches"]
