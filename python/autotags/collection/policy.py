"""Scan policy: the modes and policies a scan takes, why an image needs tagging by a
model now, and the settings each scan records (which --mode new compares)."""

from __future__ import annotations

from typing import Literal

from ..errors import SettingsError
from .files import FileState
from .store import ScanRecord

ScanMode = Literal["new", "all"]
Policy = Literal["replace", "update"]
SCAN_MODES: tuple[ScanMode, ...] = ("new", "all")
POLICIES: tuple[Policy, ...] = ("replace", "update")

ScanReason = Literal["new", "all", "changed", "retry", "settings"]


def check_policy(policy: str) -> Policy:
    """`policy` if it is one of :data:`POLICIES`, else ValueError."""
    if policy not in POLICIES:
        raise SettingsError(f"policy must be one of {POLICIES}, got {policy!r}")
    return policy


def stored_threshold(threshold: float) -> float:
    """A threshold as scans record it, and as --mode new compares it."""
    return round(threshold, 4)


def recorded_settings(accuracy: int, threshold: float) -> dict[str, object]:
    """What each scan row records of how it was tagged (--mode new compares it)."""
    return {"accuracy": accuracy, "threshold": stored_threshold(threshold)}


def scan_reason(state: FileState, record: ScanRecord | None, mode: ScanMode,
                retry_failed: bool, threshold: float) -> ScanReason | None:
    """Why an image in `state` needs tagging by a model now, given the model's last scan
    of it (`record`), or None when it does not."""
    if record is None:
        return "new"
    if mode == "all":
        return "all"
    if (record.state.size, record.state.mtime_ns) != (state.size, state.mtime_ns):
        return "changed"
    if record.error is not None:
        return "retry" if retry_failed else None
    if record.settings.get("threshold") != stored_threshold(threshold):
        return "settings"
    return None
