"""Transparency-log primitives: RFC 9162 Merkle proofs, C2SP signed notes, checkpoints and cosignatures.

Pure functions over bytes and text, with no network and no registry code, so
the registry (which builds proofs and signs checkpoints) and the SDK's monitor
(which verifies them) compute the same bytes. The vectors in docs/vectors/
(merkle.json, note.json, cosignature.json) pin them to the published standards.
"""
