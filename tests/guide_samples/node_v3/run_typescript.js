// Runs a TypeScript sample given on stdin: TypeScript's own compiler strips the types, then the
// program runs as a module of this folder (so `require("openai")` finds openai-node 3.3.0).
const fs = require("fs");
const path = require("path");
const Module = require("module");
const ts = require("typescript");

const source = fs.readFileSync(0, "utf8");
const { outputText, diagnostics } = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 },
  reportDiagnostics: true,
});
if (diagnostics.length) {
  for (const d of diagnostics) console.error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  process.exit(2);
}
const filename = path.join(__dirname, "sample.ts");
const sample = new Module(filename, module);
sample.filename = filename;
sample.paths = Module._nodeModulePaths(__dirname);
sample._compile(outputText, filename);
