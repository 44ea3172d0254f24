"""A worker's ``/metrics`` page, read the way Prometheus reads it."""

from __future__ import annotations

from dataclasses import dataclass

import prometheus_client.parser
import prometheus_client.samples


@dataclass(frozen=True)
class Scrape:
    """The families and samples of one ``/metrics`` page.

    Attributes:
        types: Each family's type (``counter``, ``histogram``, ...) by name.
        samples: Every sample of every family.
    """

    types: dict[str, str]
    samples: list[prometheus_client.samples.Sample]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        """Parse a page in Prometheus' text format."""
        families = list(prometheus_client.parser.text_string_to_metric_families(text))
        return cls(
            types={family.name: family.type for family in families},
            samples=[sample for family in families for sample in family.samples],
        )

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def label_sets(self, name: str) -> list[dict[str, str]]:
        """The labels of each sample called ``name``."""
        return [sample.labels for sample in self.samples if sample.name == name]
