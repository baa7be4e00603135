"""wagerlab.chain.compiler against throwaway source trees (one solc run takes roughly 1-2 s)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from wagerlab.chain import compiler
from wagerlab.chain.compiler import CompilerError, compile_contracts, load_artifacts, repo_root

GOOD_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

contract Counter {
    uint256 public count;

    function increment() external {
        count += 1;
    }
}
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root with scripts/compile.js, node_modules and an empty contracts/."""
    real_root = Path(__file__).resolve().parents[2]
    (tmp_path / "scripts").mkdir()
    shutil.copy(real_root / "scripts" / "compile.js", tmp_path / "scripts" / "compile.js")
    (tmp_path / "node_modules").symlink_to(real_root / "node_modules")
    (tmp_path / "contracts").mkdir()
    monkeypatch.setenv(compiler.ROOT_ENV, str(tmp_path))
    monkeypatch.setattr(compiler, "_loaded", None)
    return tmp_path


def test_compile_writes_artifacts_once(tree: Path) -> None:
    (tree / "contracts" / "Counter.sol").write_text(GOOD_SOURCE)

    path = compile_contracts()
    first_mtime = path.stat().st_mtime_ns
    again = compile_contracts()

    data = json.loads(path.read_text())
    assert path == tree / "build" / "contracts.json"
    assert again.stat().st_mtime_ns == first_mtime
    assert data["source_hash"] == compiler.source_hash(tree)
    assert data["solc_version"].startswith("0.8.30")
    counter = load_artifacts()["Counter"]
    assert counter.bytecode.startswith("0x6080")
    assert {item["name"] for item in counter.abi} == {"count", "increment"}


def test_solc_errors_are_reported(tree: Path) -> None:
    (tree / "contracts" / "Broken.sol").write_text("pragma solidity 0.8.30;\ncontract Broken { uint256 x = ; }\n")

    with pytest.raises(CompilerError, match=r"(?s)solc reported errors:.*Broken\.sol:2"):
        compile_contracts()
    assert not (tree / "build" / "contracts.json").exists()


def test_missing_node_modules_says_setup(tree: Path) -> None:
    (tree / "node_modules").unlink()
    with pytest.raises(CompilerError, match=r"npm package solc missing .*run ./scripts/setup.sh"):
        compile_contracts(force=True)


def test_missing_node_says_setup(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler.shutil, "which", lambda name: None)
    with pytest.raises(CompilerError, match=r"node not found on PATH.*run ./scripts/setup.sh"):
        compile_contracts(force=True)


def test_root_without_contracts_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiler.ROOT_ENV, str(tmp_path))
    with pytest.raises(CompilerError, match="no contracts/ directory under"):
        repo_root()


def test_duplicate_contract_names_raise() -> None:
    compiled = {"abi": [], "evm": {"bytecode": {"object": ""}, "deployedBytecode": {"object": ""}}}
    output = {"contracts": {"contracts/A.sol": {"Twin": compiled}, "contracts/b/A.sol": {"Twin": compiled}}}

    with pytest.raises(CompilerError, match="contract name 'Twin' is defined in both"):
        compiler._collect_contracts(output)
