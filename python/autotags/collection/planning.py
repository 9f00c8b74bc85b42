"""Each model of a scan resolved once, and the files it must tag now."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import SettingsError
from ..models.catalogue import load_catalogue
from ..models.runtime import RunSettings
from ..tagging.tagger import Tagger
from .discovery import FoundFile
from .policy import Policy, ScanMode, recorded_settings, scan_reason
from .reports import ScanReport
from .store import TagStore

ModelChoice = str | Tagger  # a catalogue name, or a tagger the caller built


@dataclass(frozen=True)
class ModelPlan:
    """One model as every step of a scan sees it: planning, tagging, storing."""

    name: str
    labels: tuple[str, ...]
    threshold: float
    recorded: dict[str, object]    # stored with each of its scans: accuracy, threshold, policy
    tagger: Tagger | None = None   # given ready by the caller; else built when there is work


def resolve_models(model: ModelChoice | Sequence[ModelChoice] | None, settings: RunSettings,
                   policy: Policy) -> list[ModelPlan]:
    """The plans of the models asked for (names checked now, before any work)."""
    catalogue = load_catalogue()
    if model is None:
        model = catalogue.default_models[0]
    choices = [model] if isinstance(model, str | Tagger) else list(model)
    if not choices:
        raise SettingsError("no model given")
    plans = []
    for choice in choices:
        if isinstance(choice, Tagger):
            name, labels = choice.model_name, choice.spec.labels
            accuracy, threshold = choice.accuracy, choice.threshold
        else:
            spec = catalogue.get(choice)
            name, labels = spec.name, spec.labels
            accuracy, threshold = settings.accuracy, spec.threshold(settings.accuracy)
        recorded = {**recorded_settings(accuracy, threshold), "policy": policy}
        plans.append(ModelPlan(name, labels, threshold, recorded,
                               choice if isinstance(choice, Tagger) else None))
    return plans


def files_to_tag(store: TagStore, plan: ModelPlan, files: list[FoundFile], mode: ScanMode,
                 retry_failed: bool, report: ScanReport) -> list[FoundFile]:
    """The files this model must tag now, with the others counted as up to date."""
    counts = report.models[plan.name]
    records = store.scan_records(plan.name)
    reasons = [scan_reason(f.state, records.get(os.fsencode(f.path)), mode, retry_failed,
                           plan.threshold)
               for f in files]
    todo = [f for f, reason in zip(files, reasons, strict=True) if reason]
    counts.new_settings = reasons.count("settings")
    counts.up_to_date = len(files) - len(todo)
    report.skipped += counts.up_to_date
    return todo
