"""The city's task platform: directives tracked, assigned onward, reminded, reported back.

It is a consumer like any other system: the hub delivers directive events to it
through `TaskPlatformConnector` (hub/tasks/connector.py), which applies them to
its own tables exactly once and in version order (hub/tasks/apply.py). What it
publishes (progress, completion, reminders) goes through the transactional outbox
(hub/tasks/events.py) and back into ingest (hub/tasks/feed.py). Statuses are derived
from dates (hub/tasks/status.py); officials work through hub/tasks/api.py.

The connector and the API are imported from their modules, not from here: the
connector registry imports hub.tasks.connector, and this package stays light for
the migrations (which import hub.tasks.tables).
"""

from hub.tasks.apply import Outcome, apply, held
from hub.tasks.feed import IngestFeed
from hub.tasks.onward import Assignee, add_personal_reminder, assign, instant, reassign
from hub.tasks.queries import TaskFilter, dashboard, flagged, list_tasks, task_detail
from hub.tasks.reminders import remind
from hub.tasks.status import STATUSES, Platform, status_of
from hub.tasks.work import Actor, Unit, complete, report_progress, save_units

__all__ = [
    "STATUSES",
    "Actor",
    "Assignee",
    "IngestFeed",
    "Outcome",
    "Platform",
    "TaskFilter",
    "Unit",
    "add_personal_reminder",
    "apply",
    "assign",
    "complete",
    "dashboard",
    "flagged",
    "held",
    "instant",
    "list_tasks",
    "reassign",
    "remind",
    "report_progress",
    "save_units",
    "status_of",
    "task_detail",
]
