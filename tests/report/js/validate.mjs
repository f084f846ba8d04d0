// Validate CTRF documents with the ctrf package's own validator (ajv + the CTRF schema).
// usage: node validate.mjs FILE...   prints one JSON line per file; exit 1 if any is invalid
import { readFileSync } from "node:fs";
import { validate, CURRENT_SPEC_VERSION } from "ctrf";

let invalid = 0;
for (const file of process.argv.slice(2)) {
  const result = validate(JSON.parse(readFileSync(file, "utf8")));
  console.log(JSON.stringify({ file, valid: result.valid, errors: result.errors, spec: CURRENT_SPEC_VERSION }));
  if (!result.valid) invalid += 1;
}
process.exit(invalid ? 1 : 0);
