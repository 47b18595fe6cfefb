"""Grafana annotation tags: what the alert service writes and the alerts dashboard filters on."""

from __future__ import annotations


def plant_tag(plant: str) -> str:
    """The annotation tag naming the plant; the alerts dashboard filters on it (with `$plant`)."""
    return f"plant:{plant}"


def annotation_tags(plant: str, device: str, rule: str, severity: str, sector: str | None) -> list[str]:
    """Every tag of a breach's region annotation."""
    tags = [plant_tag(plant), f"device:{device}", f"indicator:{rule}", f"severity:{severity}"]
    return [*tags, f"sector:{sector}"] if sector else tags
