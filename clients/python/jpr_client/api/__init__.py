"""Generated protobuf and gRPC code for `jpr.v1` (see `make protos`). Do not edit."""
