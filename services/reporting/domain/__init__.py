"""The reporting service's rules as plain Python, tested without broker or database: the EC budget report built from
plain facts (budget_report.py), the periods of the scheduled reports (periods.py), the comparison with the grants
ledger (reconciliation.py)."""
