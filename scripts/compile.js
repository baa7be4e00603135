#!/usr/bin/env node
// Compile every .sol file under contracts/ (or SOURCE_DIR) with npm's solc (standard JSON)
// and write solc's output JSON to the file given as the first argument.
//
// Usage: node scripts/compile.js OUTPUT_JSON [SOURCE_DIR]
//
// The output goes to a file because the solcjs command line cuts piped output at 64 KiB.
// Exit status: 0 when solc ran (its output may still contain errors, which the caller
// reads), 2 on wrong usage, 1 when solc could not be loaded or run.
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const DEFAULT_SOURCE_DIR = path.join(ROOT, 'contracts');

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

function buildInput(sourceDir) {
  const sources = {};
  for (const file of findSources(sourceDir)) {
    // Name units from the repository root when possible, so messages read contracts/X.sol.
    const base = file.startsWith(ROOT + path.sep) ? ROOT : sourceDir;
    const unitName = path.relative(base, file).split(path.sep).join('/');
    sources[unitName] = { content: fs.readFileSync(file, 'utf8') };
  }
  return { language: 'Solidity', sources, settings: SETTINGS };
}

// Every source under the source directory is already in the input, so an import that
// reaches this callback names a file that does not exist there.
function findImport(importPath) {
  return { error: `import ${JSON.stringify(importPath)} not found in the source directory` };
}

function main() {
  const outputPath = process.argv[2];
  if (!outputPath) {
    process.stderr.write('usage: node scripts/compile.js OUTPUT_JSON [SOURCE_DIR]\n');
    process.exit(2);
  }
  const solc = require('solc');
  const sourceDir = process.argv[3] ? path.resolve(process.argv[3]) : DEFAULT_SOURCE_DIR;
  const input = buildInput(sourceDir);
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  output.solcVersion = solc.version();
  fs.writeFileSync(outputPath, JSON.stringify(output));
}

main();
