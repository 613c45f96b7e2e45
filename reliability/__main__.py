"""`python -m reliability`: run the scenarios, print exactly one line per scenario, exit 1 if any failed.

    python -m reliability                    # all ten, full sizes (make reliability)
    python -m reliability --only 4,5 --fast  # some, with the sizes `make test` uses
    python -m reliability --broker-restart   # R2 stops and starts RabbitMQ itself (a broker of your own only)

Everything but the verdict lines goes to var/reliability/<run>/suite.log (the services' logs are under
var/test-logs/<system id>/, named in suite.log).
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

# the warning filter must come before nameko (and so eventlet) is imported
import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from . import scenarios  # noqa: E402,F401  (registers R1..R10)
from .log import SuiteLog  # noqa: E402
from .scenario import SCENARIOS, execute  # noqa: E402
from .sizes import FAST, FULL  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,4,10")
    parser.add_argument("--fast", action="store_true", help="the small sizes of `make test`")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the flow and fuzz sizes")
    parser.add_argument(
        "--broker-restart", action="store_true", help="R2: really stop and start RabbitMQ (never on a shared broker)"
    )
    args = parser.parse_args(argv)

    sizes = (FAST if args.fast else FULL).scaled(args.scale)
    wanted = sorted(int(n.strip().lstrip("Rr")) for n in args.only.split(",")) if args.only else sorted(SCENARIOS)
    run_dir = REPO / "var" / "reliability" / datetime.now().strftime("%Y%m%d-%H%M%S")
    log = SuiteLog(run_dir / "suite.log")
    logging.basicConfig(level=logging.WARNING, handlers=[logging.FileHandler(run_dir / "suite.log")], force=True)
    logging.captureWarnings(True)
    warnings.simplefilter("ignore", DeprecationWarning)
    log(f"reliability suite: scenarios {wanted}, sizes {sizes}")
    print(f"# reliability suite: details in {run_dir.relative_to(REPO)}/suite.log", file=sys.stderr, flush=True)

    started = time.monotonic()
    failed = 0
    for number in wanted:
        item = SCENARIOS[number]
        options = {"broker_restart": args.broker_restart}
        outcome = execute(item, sizes, log.scoped(f"R{number}"), **options)
        print(outcome.line(), flush=True)
        failed += not outcome.passed
    log(f"suite finished in {time.monotonic() - started:.0f}s, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
