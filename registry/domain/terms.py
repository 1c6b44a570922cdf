"""Listing terms: their default lengths by severity, and the longest any listing may run."""

from __future__ import annotations

from dataclasses import dataclass

from jpr_client.model import Severity

# A term given per call, and every term or day span in the settings, is at most this long: a century
# from now (notice included) stays far inside datetime's range, whose end is the year 9999.
MAX_TERM_DAYS = 100 * 365


@dataclass(frozen=True)
class Terms:
    """Default listing terms by severity, and when credit repair may end one early, in days."""

    serious_days: int
    severe_days: int
    early_removal_after_days: int = 365
    notice_days: int = 0

    def default_for(self, severity: Severity) -> int:
        return self.severe_days if severity is Severity.SEVERE else self.serious_days
