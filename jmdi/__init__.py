"""The `jmdi` staff command line."""

import services  # noqa: F401  (first: its warning filter keeps eventlet's deprecation notice off stderr)
