"""The Markdown a multi-region deployment shows as its current details in the Web UI."""

from datetime import datetime

from models.multi_region import MultiRegionStatus, RegionProgress


def describe_regions(status: MultiRegionStatus, now: datetime) -> str:
    """The deployment, then one table row per region: wave, phase, state, colors, versions."""
    lines = [
        f"**{status.service} {status.version} → {status.environment},"
        f" {len(status.regions)} regions in {len(status.waves)} wave(s)**",
        f"- state: {status.state.value}, wave {status.current_wave + 1} of {len(status.waves)}",
    ]
    if status.approval:
        lines.append(f"- approved by {status.approval.by} at {status.approval.at:%H:%M:%S} UTC")
    elif status.require_approval:
        lines.append(f"- requires approval: `client.py approve {status.deployment_id}`")
    if status.rollback:
        lines.append(f"- rollback requested by {status.rollback.by}: {status.rollback.reason}")
    if status.reason:
        lines.append(f"- {status.reason}")
    lines += [
        "",
        "| region | wave | phase | state | colors | versions |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [_row(progress) for progress in status.regions.values()]
    return "\n".join(lines)


def _row(progress: RegionProgress) -> str:
    status = progress.status
    if status is None:
        return f"| {progress.region} | {progress.wave + 1} | not started | | | |"
    colors = (
        f"{status.active_color_before} → {status.active_color_after}"
        if status.active_color_before
        else ""
    )
    versions = ", ".join(f"{c} {v or '-'}" for c, v in sorted(status.versions_after.items()))
    return (
        f"| {progress.region} | {progress.wave + 1} | {status.phase.value} |"
        f" {status.state.value} | {colors} | {versions} |"
    )
