"""R13's local RabbitMQ cluster (reliability/cluster.py) starts even when a port it picked was taken before its
node could bind it: the node is started again on other ports instead of failing the scenario."""

import socket

from reliability.cluster import LocalCluster


def test_a_node_whose_port_was_taken_meanwhile_starts_on_other_ports():
    said = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster = LocalCluster(names=("a",), prefix="jmdi-port-test", log=said.append)
        cluster.ports["a"] = port  # as if another process had taken it after the cluster chose it
        with cluster:
            assert cluster.running("a") and cluster.ports["a"] != port
    assert any(f"port {port}" in line and "taken meanwhile" in line for line in said), said
