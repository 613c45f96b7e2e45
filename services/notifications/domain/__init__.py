"""The notifications service's rules as plain Python, tested without broker or database: when a report is due and
which reminder is due today (schedule.py), how failed deliveries are retried."""
