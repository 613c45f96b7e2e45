"""What a nameko service is built from: `@operation`, `@handles`, `ServiceBase`, the database provider, and RPC clients
that call as a service."""
