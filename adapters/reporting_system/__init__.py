"""Reference government reporting information system (hệ thống thông tin báo cáo), simulated.

The system collects indicator reports per period and agency. The hub sends it
each version of a report (`vn.lgsp.report.submitted.v1` data, as JSON) through
hub/connectors/reporting_system.py; the contract is
contracts/reporting-system.openapi.yaml.

    with ReportingSystem() as system:                 # 127.0.0.1, free port; any caller
        system.fail(503, times=2, retry_after=5)      # the next two reports get 503
        system.wait_for(1)                            # one report version stored
        system.received()                             # [{"receipt_id", "repeats", "report"...}]

Native API:

- `POST /api/reports` takes one report (`report_id`, `version`, `indicator_set`,
  `period`, `agency`, `indicators`, ...). A new (report_id, version) is stored:
  201 `{"success": true, "status": "received", "receipt_id", ...}`. The same pair
  again: 200 `"status": "already received"`, counted in `repeats`, not stored
  twice. A version lower than the latest stored: 409 `SUPERSEDED`. Malformed:
  400; too large: 413; wrong `X-Api-Key` (when keys are set): 401. Errors are
  `{"success": false, "code", "message"}`.

Control (no key): `GET /_reports/received`, `GET /_reports/stats`,
`POST /_reports/fail?status=503&times=N[&retry_after=S]`.
Run alone: `python -m adapters.reporting_system --port 9005 [--key K]`.
"""

from adapters.reporting_system.records import Records, ReportError
from adapters.reporting_system.server import ReportingSystem

__all__ = ["Records", "ReportError", "ReportingSystem"]
