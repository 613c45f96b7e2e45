"""The `jmdi` staff command line."""
