"""How big each scenario is: the full suite (`make reliability`) and the fast part that runs in `make test`."""

from dataclasses import dataclass, replace

from services.common.contracts.topology import SERVICES


@dataclass(frozen=True)
class Sizes:
    flow_events: int  # R1: events produced by the flow while each service is killed in turn
    fault_flow_events: int  # R2, R3: events produced by the flow around the broker / database fault
    duplicate_flow_events: int  # R4: events produced, then every one published twice more
    late_consumer_events: int  # R6: events published while a consumer has never run
    fuzz_inputs: int  # R7: generated RPC inputs in total (hand-picked nasties come on top)
    racers: int  # R8: concurrent awards racing for one window's last EUR 200,000
    duplicate_requests: int  # R8: concurrent copies of one payment request (and of its approval)
    threads: int  # parallel staff clients driving a flow
    settle_seconds: float  # how long consumers may take to catch up after a flow
    fault_pause: float  # R2/R3: how long the broker/database stays away
    killed: tuple = SERVICES  # R1: the services killed -9 in turn, one after another during the flow
    per_window: int = 10  # R1-R3: proposals per call window in each batch of the flow
    flood_calls: int = 10_000  # R12: refused calls through the gateway

    def scaled(self, factor: float) -> "Sizes":
        return replace(
            self,
            flow_events=int(self.flow_events * factor),
            fault_flow_events=int(self.fault_flow_events * factor),
            duplicate_flow_events=int(self.duplicate_flow_events * factor),
            late_consumer_events=int(self.late_consumer_events * factor),
            fuzz_inputs=int(self.fuzz_inputs * factor),
        )


FULL = Sizes(
    flow_events=10_000,
    fault_flow_events=2_000,
    duplicate_flow_events=1_000,
    late_consumer_events=500,
    fuzz_inputs=10_000,
    racers=50,
    duplicate_requests=20,
    threads=12,
    settle_seconds=600,
    fault_pause=5,
)

FAST = Sizes(
    flow_events=250,
    fault_flow_events=200,
    duplicate_flow_events=120,
    late_consumer_events=60,
    fuzz_inputs=300,
    racers=50,
    duplicate_requests=10,
    threads=6,
    settle_seconds=180,
    fault_pause=2,
    killed=("grants",),  # one kill: grants both consumes and produces, and holds the money
    per_window=4,
    flood_calls=2_000,
)
