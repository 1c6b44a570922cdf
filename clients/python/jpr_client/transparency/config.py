"""`MonitorConfig`: how `RegistryClient` follows the transparency log. Apart from the monitor itself, so that
a client that only looks up loads none of the log's verification code (the CLI's cold start)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class MonitorConfig:
    """How `RegistryClient` follows the registry's transparency log.

    `state_file`: where the newest verified checkpoint is kept across runs (None: in memory, for this
    client's life only; a member should keep one). `witnesses`: verifier keys (C2SP note verifier key
    strings) of the witnesses the member trusts; every checkpoint must be cosigned by `min_witnesses` of
    them. `proof_wait`: how long a proof waits for a checkpoint covering a new event (the registry signs
    one every few seconds).

    Example:
        >>> MonitorConfig(state_file="jpr-log.state", witnesses=(key_a, key_b, key_c), min_witnesses=2)  # doctest: +SKIP
    """

    state_file: str | os.PathLike[str] | None = None
    witnesses: tuple[str, ...] = ()
    min_witnesses: int = 0
    proof_wait: float = 10.0

    def __post_init__(self) -> None:
        check_quorum(self.min_witnesses, len(self.witnesses))
        if self.proof_wait < 0:
            raise ValueError("MonitorConfig.proof_wait is negative")


def check_quorum(min_witnesses: int, named: int) -> None:
    """ValueError unless `min_witnesses` of `named` witnesses is a quorum that can be met.

    Example:
        >>> check_quorum(2, 3)
    """
    if not 0 <= min_witnesses <= named:
        raise ValueError(f"min_witnesses is {min_witnesses}; give 0 to {named} (the number of witnesses named)")
