// Validates each glTF/GLB file named on the command line with Khronos glTF-Validator and
// prints one JSON array: per file, {path, numErrors, numWarnings, messages} (messages are
// the validator's issues: code, severity, pointer, message). Used by tests/exhibits/gltf_validator.py.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const validator = require("gltf-validator");

const reports = [];
for (const path of process.argv.slice(2)) {
  const bytes = new Uint8Array(await readFile(path));
  try {
    const report = await validator.validateBytes(bytes, {
      uri: path,
      maxIssues: 100,
      externalResourceFunction: (uri) => Promise.reject(`external resource ${uri} refused`),
    });
    reports.push({
      path,
      numErrors: report.issues.numErrors,
      numWarnings: report.issues.numWarnings,
      messages: report.issues.messages,
      info: report.info ?? null,
    });
  } catch (error) {
    reports.push({ path, numErrors: 1, numWarnings: 0, messages: [{ code: "VALIDATOR_FAILED", message: String(error) }] });
  }
}
process.stdout.write(JSON.stringify(reports));
