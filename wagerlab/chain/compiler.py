"""Compile the Solidity contracts with npm's solc and load the resulting artifacts.

`scripts/compile.js` runs solc's JavaScript API on every `.sol` file under `contracts/`.
This module runs that script, checks solc's messages and writes `build/contracts.json`:
one entry per contract with its ABI and bytecode, plus the hash of the inputs, so an
unchanged source tree is not compiled again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ROOT_ENV = "WAGERLAB_ROOT"
ARTIFACTS_RELATIVE_PATH = Path("build") / "contracts.json"
COMPILE_TIMEOUT_SECONDS = 120


class CompilerError(Exception):
    """The contracts could not be compiled: a missing tool or an error reported by solc."""


@dataclass(frozen=True)
class ContractArtifact:
    """The ABI and bytecode of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    """Creation bytecode as 0x-prefixed hex, or "0x" for an interface."""
    deployed_bytecode: str = "0x"


def repo_root() -> Path:
    """Return the repository root: `$WAGERLAB_ROOT`, or the checkout this package lives in."""
    override = os.environ.get(ROOT_ENV)
    root = Path(override) if override else Path(__file__).resolve().parents[2]
    if not (root / "contracts").is_dir():
        raise CompilerError(
            f"no contracts/ directory under {str(root)!r}: set {ROOT_ENV} to the wagerlab "
            "checkout (the package must be installed editable with `pip install -e .`)"
        )
    return root


def artifacts_path(root: Path | None = None) -> Path:
    return (root or repo_root()) / ARTIFACTS_RELATIVE_PATH


def source_hash(root: Path) -> str:
    """Hash every input of a compilation: the sources, the compile script and solc's version."""
    digest = hashlib.sha256()
    inputs = sorted((root / "contracts").rglob("*.sol"))
    inputs.append(root / "scripts" / "compile.js")
    inputs.append(root / "node_modules" / "solc" / "package.json")
    for path in inputs:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()


def compile_contracts(force: bool = False) -> Path:
    """Compile the contracts unless `build/contracts.json` matches the sources; return its path."""
    root = repo_root()
    output = artifacts_path(root)
    current_hash = source_hash(root)
    if not force and _stored_hash(output) == current_hash:
        logger.debug("contracts unchanged (source hash %s), skipping solc", current_hash[:12])
        return output

    solc_output = _run_solc(root)
    artifacts = {
        "source_hash": current_hash,
        "solc_version": solc_output.get("solcVersion", "unknown"),
        "contracts": _collect_contracts(solc_output),
    }
    _write_atomically(output, artifacts)
    logger.info("compiled %d contracts into %s", len(artifacts["contracts"]), output)
    return output


_loaded: tuple[str, dict[str, ContractArtifact]] | None = None
"""The artifacts last loaded in this process, with their source hash."""


def load_artifacts() -> dict[str, ContractArtifact]:
    """Return every compiled contract by name, compiling first when the sources changed."""
    global _loaded
    current_hash = source_hash(repo_root())
    if _loaded is not None and _loaded[0] == current_hash:
        return dict(_loaded[1])

    path = compile_contracts()
    data = json.loads(path.read_text())
    artifacts = {name: _artifact(name, entry) for name, entry in data["contracts"].items()}
    _loaded = (data["source_hash"], artifacts)
    return dict(artifacts)


def compile_directory(source_dir: Path) -> dict[str, ContractArtifact]:
    """Compile every `.sol` file under `source_dir` with the project's settings, without caching.

    For contracts outside `contracts/`, such as test doubles; the result is not written to
    `build/`.
    """
    solc_output = _run_solc(repo_root(), Path(source_dir).resolve())
    return {name: _artifact(name, entry) for name, entry in _collect_contracts(solc_output).items()}


def install_solc_wrapper(folder: Path | None = None) -> Path:
    """Link `scripts/solc-wrapper` as `solc-v<version>` into `folder` and return the folder.

    py-solc-x (and so `ape compile`) takes any executable of that name in the folder named by
    `$SOLCX_BINARY_PATH` as an installed solc. The default folder is `build/solcx`.
    """
    root = repo_root()
    target = Path(folder) if folder is not None else root / "build" / "solcx"
    package = root / "node_modules" / "solc" / "package.json"
    try:
        version = json.loads(package.read_text())["version"]
    except FileNotFoundError as err:
        raise CompilerError(f"npm package solc missing from {str(package.parent)!r}: run ./scripts/setup.sh") from err

    target.mkdir(parents=True, exist_ok=True)
    link = target / f"solc-v{version}"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(root / "scripts" / "solc-wrapper")
    logger.info("linked %s to scripts/solc-wrapper", link)
    return target


def _artifact(name: str, entry: dict[str, Any]) -> ContractArtifact:
    return ContractArtifact(
        name=name, abi=entry["abi"], bytecode=entry["bytecode"], deployed_bytecode=entry["deployedBytecode"]
    )


def _stored_hash(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("source_hash")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _run_solc(root: Path, source_dir: Path | None = None) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise CompilerError("node not found on PATH: install Node.js (tested with 20), then run ./scripts/setup.sh")
    if not (root / "node_modules" / "solc").is_dir():
        raise CompilerError(f"npm package solc missing from {str(root / 'node_modules')!r}: run ./scripts/setup.sh")

    with tempfile.TemporaryDirectory(prefix="wagerlab-solc-") as tmp:
        out_file = Path(tmp) / "solc-output.json"
        command = [node, str(root / "scripts" / "compile.js"), str(out_file)]
        if source_dir is not None:
            command.append(str(source_dir))
        try:
            result = subprocess.run(
                command, cwd=root, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired as err:
            raise CompilerError(f"solc did not finish within {COMPILE_TIMEOUT_SECONDS} s") from err
        if result.returncode != 0:
            raise CompilerError(f"scripts/compile.js failed with exit status {result.returncode}: {result.stderr.strip()}")
        solc_output: dict[str, Any] = json.loads(out_file.read_text())

    _check_messages(solc_output)
    return solc_output


def _check_messages(solc_output: dict[str, Any]) -> None:
    errors = []
    for message in solc_output.get("errors", []):
        text = message.get("formattedMessage") or message.get("message", "")
        if message.get("severity") == "error":
            errors.append(text.strip())
        else:
            logger.warning("solc: %s", text.strip())
    if errors:
        raise CompilerError("solc reported errors:\n" + "\n\n".join(errors))


def _collect_contracts(solc_output: dict[str, Any]) -> dict[str, dict[str, Any]]:
    contracts: dict[str, dict[str, Any]] = {}
    for source, by_name in sorted(solc_output.get("contracts", {}).items()):
        for name, compiled in by_name.items():
            if name in contracts:
                raise CompilerError(
                    f"contract name {name!r} is defined in both {contracts[name]['source']!r} and "
                    f"{source!r}: rename one, because artifacts are looked up by name"
                )
            contracts[name] = {
                "source": source,
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
            }
    return contracts


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file, so a concurrent reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as tmp:
        json.dump(data, tmp, indent=1)
    os.replace(tmp_name, path)
