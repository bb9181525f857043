"""Bounds on what an archive's settings may do to storage."""

from atdarchive.limits import register

register("remote.max_lock_days", 3650, "days",
         "Object Lock retention (an irreversible promise on S3 in compliance mode)")
