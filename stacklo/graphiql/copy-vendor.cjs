// Copies the browser bundles GraphiQL needs from node_modules into vendor/,
// which the Python app serves; nothing else reads node_modules at run time.
// Runs as this folder's postinstall (npm install / npm ci).
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const here = __dirname;
const modules = path.join(here, "node_modules");
const vendor = path.join(here, "vendor");

// package -> files (relative to the package root); each lands in vendor/<package>/<basename>.
// Keep in sync with stacklo/graphiql/__init__.py.
const FILES = {
  react: ["umd/react.production.min.js", "LICENSE"],
  "react-dom": ["umd/react-dom.production.min.js", "LICENSE"],
  graphiql: ["graphiql.min.js", "graphiql.min.css", "LICENSE"],
  "graphql-ws": ["umd/graphql-ws.min.js", "LICENSE.md"],
};

// Start clean so files from an older layout never linger.
fs.rmSync(vendor, { recursive: true, force: true });

const missing = [];
for (const [pkg, files] of Object.entries(FILES)) {
  const destDir = path.join(vendor, pkg);
  fs.mkdirSync(destDir, { recursive: true });
  for (const rel of files) {
    const src = path.join(modules, pkg, rel);
    if (!fs.existsSync(src)) {
      missing.push(`${pkg}/${rel}`);
      continue;
    }
    fs.copyFileSync(src, path.join(destDir, path.basename(rel)));
  }
}

if (missing.length > 0) {
  console.error(`copy-vendor: missing from node_modules: ${missing.join(", ")}`);
  process.exit(1);
}
console.log(`copy-vendor: copied GraphiQL assets into ${path.relative(process.cwd(), vendor) || "."}`);
