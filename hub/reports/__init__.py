"""The reporting consumer: dossier-processing indicators per agency and period.

The hub delivers dossier events to `ReportingConnector` (hub/reports/connector.py,
kind `reporting`), which keeps each dossier's newest state exactly once
(hub/reports/apply.py). `compute` derives the indicators of a month, quarter or
year (definitions in hub/reports/indicators.py); `submit` publishes each agency's
report through the transactional outbox as `vn.lgsp.report.submitted.v1`, a new
version only when the figures changed (hub/reports/submit.py). `due_periods` says
which periods a daily run submits. The hub routes the reports to the external
reporting system, a System of kind `reporting_system`
(hub/connectors/reporting_system.py).

The connector and the CLI function are imported from their modules, not from
here, so the migrations (which import hub.reports.tables) stay light.
"""

from hub.reports.apply import Outcome, apply
from hub.reports.indicators import INDICATOR_SET, compute
from hub.reports.periods import Period, due_periods, parse_period
from hub.reports.submit import SUBMITTED, Reporting, report_id_for, submit, submit_due

__all__ = [
    "INDICATOR_SET",
    "SUBMITTED",
    "Outcome",
    "Period",
    "Reporting",
    "apply",
    "compute",
    "due_periods",
    "parse_period",
    "report_id_for",
    "submit",
    "submit_due",
]
