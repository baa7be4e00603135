// Compile Probe.sol with npm's solc (the project's pinned compiler) into Probe.json.
// Run from the repository root: node tests/chain/data/compile.js
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const input = {
  language: "Solidity",
  sources: { "Probe.sol": { content: fs.readFileSync(path.join(here, "Probe.sol"), "utf8") } },
  settings: {
    evmVersion: "prague",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  console.error(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
const probe = output.contracts["Probe.sol"].Probe;
const artifact = { abi: probe.abi, bytecode: "0x" + probe.evm.bytecode.object, compiler: solc.version() };
fs.writeFileSync(path.join(here, "Probe.json"), JSON.stringify(artifact, null, 2) + "\n");
