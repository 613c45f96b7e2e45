"""Starting processes: one service (`python -m services.common.launch.runner <service>`), all of them (`make run`'s
supervisor), and their logging."""
