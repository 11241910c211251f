"""Scheduled: daily, weekly and monthly population rollups (population_rollups) from the learner days.

The event may carry {"date": "YYYY-MM-DD"} to replay a day (see ms8.jobs.runner.parse_event).
"""

from ms8.jobs.rollups import JOB
from ms8.jobs.runner import handler

lambda_handler = handler(JOB)
