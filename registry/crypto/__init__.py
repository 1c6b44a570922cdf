"""The registry's own cryptography: the CA for mutual TLS.

The OPRF and DSSE it shares with members live in the SDK, `jpr_client.crypto`.
"""
