#!/usr/bin/env node
// Compile every .sol file under contracts/ with npm's solc (standard JSON) and write solc's
// output JSON to the file given as the first argument.
//
// Usage: node scripts/compile.js OUTPUT_JSON
//
// The output goes to a file because the solcjs command line cuts piped output at 64 KiB.
// Exit status: 0 when solc ran (its output may still contain errors, which the caller
// reads), 2 on wrong usage, 1 when solc could not be loaded or run.
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const CONTRACTS_DIR = path.join(ROOT, 'contracts');

// py-evm 0.12 supports forks up to Prague, and osaka output uses an opcode it lacks (CLZ).
const SETTINGS = {
  evmVersion: 'prague',
  optimizer: { enabled: true, runs: 200 },
  outputSelection: {
    '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
  },
};

function findSources(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      found.push(...findSources(full));
    } else if (entry.name.endsWith('.sol')) {
      found.push(full);
    }
  }
  return found.sort();
}

function buildInput() {
  const sources = {};
  for (const file of findSources(CONTRACTS_DIR)) {
    const unitName = path.relative(ROOT, file).split(path.sep).join('/');
    sources[unitName] = { content: fs.readFileSync(file, 'utf8') };
  }
  return { language: 'Solidity', sources, settings: SETTINGS };
}

// Every source under contracts/ is already in the input, so an import that reaches this
// callback names a file that does not exist there.
function findImport(importPath) {
  return { error: `import ${JSON.stringify(importPath)} not found under contracts/` };
}

function main() {
  const outputPath = process.argv[2];
  if (!outputPath) {
    process.stderr.write('usage: node scripts/compile.js OUTPUT_JSON\n');
    process.exit(2);
  }
  const solc = require('solc');
  const input = buildInput();
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  output.solcVersion = solc.version();
  fs.writeFileSync(outputPath, JSON.stringify(output));
}

main();
