"""Scheduled every minute: the analytics snapshots, points and gamification of the learners a
platform's batches noted since the last run (ms8.jobs.pending)."""

from ms8.jobs.pending import JOB
from ms8.jobs.runner import handler

lambda_handler = handler(JOB)
