"""`import jpr_client` is cheap, and every public name still resolves to the one definition."""

from __future__ import annotations

import subprocess
import sys

import pytest

import jpr_client


def test_importing_the_package_loads_neither_grpc_nor_the_crypto_bindings() -> None:
    code = "import sys, jpr_client; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'rbcl', 'cryptography', 'phonenumbers', 'google'))))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == ""


@pytest.mark.parametrize("name", jpr_client.__all__)
def test_every_public_name_is_the_object_its_module_defines(name: str) -> None:
    value = getattr(jpr_client, name)
    if name == "__version__":
        assert isinstance(value, str)
        return
    module = sys.modules[value.__module__]
    assert getattr(module, name) is value and value.__module__.startswith("jpr_client.")


def test_star_import_and_unknown_names() -> None:
    namespace: dict[str, object] = {}
    exec("from jpr_client import *", namespace)
    assert set(jpr_client.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'Client'"):
        jpr_client.Client  # noqa: B018
    assert "RegistryClient" in dir(jpr_client)
