"""Scheduled: delete report rows past retention (the bucket's lifecycle rule expires the files).

The event may carry {"date": "YYYY-MM-DD"} to run as of that day (see ms8.jobs.runner.parse_event).
"""

from ms8.jobs.expire_reports import JOB
from ms8.jobs.runner import handler

lambda_handler = handler(JOB)
