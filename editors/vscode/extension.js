// The archdsl extension: the language (its grammar and configuration are in package.json) and
// a client that starts `archdsl lsp`, the language server, over stdio for every spec opened.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

async function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("archdsl")
    .get("server.command", ["archdsl", "lsp"]);
  client = new LanguageClient(
    "archdsl",
    "archdsl language server",
    { command, args },
    {
      documentSelector: [
        { scheme: "file", language: "archdsl" },
        { scheme: "untitled", language: "archdsl" },
      ],
    },
  );
  try {
    await client.start();
  } catch (error) {
    client = undefined;
    vscode.window.showErrorMessage(
      `archdsl: could not start '${[command, ...args].join(" ")}' (${error.message}). ` +
        `Install the server with pip install 'archdsl[lsp]', or set archdsl.server.command.`,
    );
  }
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
