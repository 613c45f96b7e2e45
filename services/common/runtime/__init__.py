"""What every process reads and reports: configuration (config.yml, settings) and Prometheus metrics."""
