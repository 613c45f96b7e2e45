"""`make bench`: the system's throughput, latency and memory as ratios to bare anchors measured in the same run.

Run with `python -m benchmarks` (see __main__.py for the options); results land in bench-results.json and a table
on stdout. docs/performance.md explains the workloads and carries the latest table.
"""
