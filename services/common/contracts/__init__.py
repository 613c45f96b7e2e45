"""The event catalogue: every event's contract (envelope and payload schema) and the topology (who produces and who
consumes which event, queue and exchange names, the processes)."""
