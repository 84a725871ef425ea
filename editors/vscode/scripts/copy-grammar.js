// The TextMate grammar is made from archdsl's layer registry (archdsl/textmate.py writes
// editors/archdsl.tmLanguage.json, and a test holds that file to it). The extension keeps no
// copy of its own: `vsce package` runs this first, and the package gets that file.
const fs = require("fs");
const path = require("path");

const source = path.join(__dirname, "..", "..", "archdsl.tmLanguage.json");
const target = path.join(__dirname, "..", "syntaxes", "archdsl.tmLanguage.json");
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(source, target);
console.log(`copied ${path.relative(process.cwd(), source)} to ${path.relative(process.cwd(), target)}`);
