"""The cryptography members and the registry share: the RFC 9497 OPRF for tokens, DSSE signatures for reports.

The registry builds on these same modules (it evaluates and proves where the
SDK blinds and verifies), so both sides compute one set of bytes.
"""
