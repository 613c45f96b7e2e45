"""The JMDI services and their kit.

Every process of the project imports this package first (the services, the `jmdi` CLI, tests, benchmarks), so
the one warning filter they all need is set here, before anything imports eventlet: eventlet (under nameko)
announces its deprecation on import, nine lines on stderr that tell staff and operators nothing. The notice
starts with a newline, hence the leading whitespace in the pattern.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # an EventletDeprecationWarning (a Warning)
