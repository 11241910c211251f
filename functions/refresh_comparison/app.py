"""Scheduled: refresh the peer-comparison view (CONCURRENTLY once populated).

The event may carry {"date": "YYYY-MM-DD"} to replay a day (see ms8.jobs.runner.parse_event).
"""

from ms8.jobs.comparison import JOB
from ms8.jobs.runner import handler

lambda_handler = handler(JOB)
