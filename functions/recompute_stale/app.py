"""Scheduled: recompute analytics snapshots older than 6 hours for users with new activity.

The event may carry {"date": "YYYY-MM-DD"} to replay a day (see ms8.jobs.runner.parse_event).
"""

from ms8.jobs.runner import handler
from ms8.jobs.stale import JOB

lambda_handler = handler(JOB)
