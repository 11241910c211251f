"""Scheduled: create the partitions ahead, drop those whose whole range is past retention.

The event may carry {"date": "YYYY-MM-DD"} to replay a day (see ms8.jobs.runner.parse_event).
"""

from ms8.jobs.partitions import JOB
from ms8.jobs.runner import handler

lambda_handler = handler(JOB)
