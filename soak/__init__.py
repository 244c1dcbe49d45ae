"""The soak: fo-assets running for a long while (30 minutes by default) against a faulty F&O sandbox.

``make soak`` (or ``python -m soak --minutes 2`` for a quick one) changes records in the sandbox, posts
their Business Events (duplicated and shuffled) to the real receiver, lets the real sensor turn them
into targeted refreshes, runs the real daily schedule, and arms a random F&O fault before every run.
It samples the process's memory throughout and ends with a weekly reconciliation and an exactness
check of every table against the tenant. Not part of CI.
"""
