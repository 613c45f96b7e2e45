"""The reliability suite (`make reliability`): the system's delivery, budget and access guarantees under faults.

Each scenario (one module, r01_… to r10_…) starts the services as real processes against the real RabbitMQ and
PostgreSQL (a fresh vhost and fresh databases, tests/support/system.py), drives them, injects its fault, then
checks the invariants every scenario shares (invariants.py). `python -m reliability` prints one line per
scenario; tests/reliability/test_suite_*.py run the same scenario code with small sizes in `make test`.
See docs/reliability.md.
"""
