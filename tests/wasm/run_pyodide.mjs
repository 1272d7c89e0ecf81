// Runs tests/wasm/scenario.py inside Pyodide (CPython compiled to WebAssembly) under node.
//
// usage: node tests/wasm/run_pyodide.mjs SEED NODES
//
// The pure-Python serf package is copied from this working tree (its .py files only: no
// compiled twin, no build output) into Pyodide's in-memory file system, next to scenario.py,
// and nothing is installed: no micropip, no loadPackage. Network access is cut before Pyodide
// loads (fetch throws), so the run proves that the cores and the simulator need only what the
// pyodide npm package ships. Prints one JSON line: scenario.run()'s result plus what this
// script checked inside Pyodide (where serf came from, which optional modules are missing).
import { loadPyodide } from "pyodide";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const [seed, nodes] = process.argv.slice(2).map((v) => Number.parseInt(v, 10));
if (!Number.isInteger(seed) || !Number.isInteger(nodes)) {
  console.error("usage: node run_pyodide.mjs SEED NODES");
  process.exit(2);
}

const networkAttempts = [];
globalThis.fetch = async (url) => {
  networkAttempts.push(String(url));
  throw new Error(`network access is disabled in this run: ${url}`);
};

const SRC = "/home/pyodide/src";

function copyTree(py, from, to) {
  py.FS.mkdirTree(to);
  let count = 0;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "__pycache__") count += copyTree(py, source, `${to}/${entry.name}`);
    } else if (entry.name.endsWith(".py") || entry.name === "py.typed") {
      py.FS.writeFile(`${to}/${entry.name}`, fs.readFileSync(source));
      count += 1;
    }
  }
  return count;
}

const started = performance.now();
const py = await loadPyodide();
const loadedMs = performance.now() - started;
const files = copyTree(py, path.join(repo, "serf"), `${SRC}/serf`);
py.FS.writeFile(`${SRC}/scenario.py`, fs.readFileSync(path.join(here, "scenario.py")));

const out = py.runPython(`
import importlib, json, sys
sys.path.insert(0, ${JSON.stringify(SRC)})
import scenario
import serf
result = scenario.run(${seed}, ${nodes})
missing = []
for name in ("msgpack", "cryptography", "re2", "uvloop", "aioquic"):
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
result["pyodide"] = {"serf_file": serf.__file__, "missing_optional": missing}
json.dumps(result)
`);
const result = JSON.parse(out);
result.pyodide.version = py.version;
result.pyodide.files_copied = files;
result.pyodide.load_s = Math.round(loadedMs) / 1000;
result.pyodide.network_attempts = networkAttempts;
result.pyodide.interfaces = Object.keys(os.networkInterfaces());
console.log(JSON.stringify(result));
