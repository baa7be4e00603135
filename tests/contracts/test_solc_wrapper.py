"""scripts/solc-wrapper as py-solc-x (and so ape-solidity) runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import solcx
from packaging.version import Version
from solcx.install import get_executable
from solcx.wrapper import get_solc_version

from wagerlab.chain.compiler import install_solc_wrapper, load_artifacts, repo_root


@pytest.fixture(scope="module")
def solc_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = install_solc_wrapper(tmp_path_factory.mktemp("solcx"))
    return folder / "solc-v0.8.30"


def test_wrapper_found_by_solcx(solc_binary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(solc_binary.parent))

    assert solcx.get_installed_solc_versions() == [Version("0.8.30")]
    assert get_executable(version="0.8.30") == solc_binary
    assert get_solc_version(solc_binary, with_commit_hash=True) == Version("0.8.30+commit.73712a01")


def test_wrapper_matches_compile_script(solc_binary: Path) -> None:
    """ape-solidity's call: standard JSON with `urls` read from the base path."""
    names = ("contracts/Sportsbook.sol", "contracts/interfaces/IERC20.sol", "contracts/interfaces/ISettlement.sol")
    sources = {name: {"urls": [name]} for name in names}
    input_json = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "evmVersion": "prague",
            "optimizer": {"enabled": True, "runs": 200},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }

    output = solcx.compile_standard(input_json, solc_binary=solc_binary, base_path=repo_root())

    bytecode = "0x" + output["contracts"]["contracts/Sportsbook.sol"]["Sportsbook"]["evm"]["bytecode"]["object"]
    assert bytecode == load_artifacts()["Sportsbook"].bytecode


def test_wrapper_rejects_unknown_option(solc_binary: Path) -> None:
    result = subprocess.run([str(solc_binary), "--bin", "x.sol"], capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "unrecognised option '--bin'" in result.stderr


def test_wrapper_reports_missing_import(solc_binary: Path) -> None:
    input_json = '{"language": "Solidity", "sources": {"Missing.sol": {"urls": ["Missing.sol"]}}}'

    result = subprocess.run(
        [str(solc_binary), "--standard-json", "--base-path", str(repo_root())],
        input=input_json,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0
    assert "File not found" in result.stdout
