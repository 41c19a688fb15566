"""The dataset registry: every table the exporter writes, keyed by name, grouped by vendor (one line per vendor)."""

from __future__ import annotations

from report_exporter.datasets.base import Dataset
from report_exporter.models.exports import VendorName
from report_exporter.vendors.here import dataset as here
from report_exporter.vendors.kore import dataset as kore
from report_exporter.vendors.particle import dataset as particle
from report_exporter.vendors.senet import dataset as senet
from report_exporter.vendors.telnyx import dataset as telnyx

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        particle.DATASET,
        here.DATASET,
        telnyx.DATASET,
        senet.APPLICATION_DATASET,
        senet.DEVICE_DATASET,
        kore.DATASET,
    )
}


def dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}") from None


def datasets_for(vendor: VendorName) -> list[Dataset]:
    return [d for d in DATASETS.values() if d.vendor is vendor]


__all__ = ["DATASETS", "dataset", "datasets_for"]
