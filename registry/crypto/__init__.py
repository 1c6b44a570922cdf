"""Cryptography for JPR: the OPRF for tokens, DSSE signatures for reports, the CA for mutual TLS.

The only modules of the project that import `cryptography` and `rbcl`.
"""
