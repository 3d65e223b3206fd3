// Generates the typed TypeScript client of both contracts from the checked-in schema/ with
// @cosmwasm/ts-codegen (the version package-lock.json pins), as a hospital's portal would.
//
//   node codegen.js <schema dir> <out dir>
//
// Exchange and Registry: types and a query/execute client each, from their IDL files
// (schema/exchange/exchange.json, schema/registry/registry.json). ExchangeData: types only,
// from schema/exchange-data/ (the response data of execute messages: RetrievedReply, which
// no IDL carries).
//
// ts-codegen 1.14.1 drops every comment of the types it generates (utils/clean.js strips
// `leadingComments`), so the schema's descriptions (the Rust `///` docs) would not reach
// the TypeScript. DocumentedTypesPlugin renders the same types again, keeping each node's
// JSDoc, and overwrites the `<Name>.types.ts` the default plugin wrote.
"use strict";
const path = require("path");
const tsCodegen = require("@cosmwasm/ts-codegen");

const codegen = tsCodegen.default;

/** A copy of a babel node without positions, keeping only JSDoc (`/** ... *\/`) comments. */
function keepJsDoc(node) {
  if (node === null || typeof node !== "object") return node;
  if (Array.isArray(node)) return node.map(keepJsDoc);
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (["loc", "start", "end", "trailingComments", "innerComments"].includes(key)) continue;
    if (key === "leadingComments") {
      const docs = (value || []).filter(
        (c) =>
          c.type === "CommentBlock" &&
          c.value.startsWith("*") &&
          !c.value.includes("automatically generated"),
      );
      // The comment written right before the node is its own.
      if (docs.length) out[key] = [{ type: docs.at(-1).type, value: docs.at(-1).value }];
      continue;
    }
    out[key] = keepJsDoc(value);
  }
  return out;
}

class DocumentedTypesPlugin extends tsCodegen.TypesPlugin {
  async doRender(name, context) {
    const files = await super.doRender(name, context);
    if (!files || !files.length) return files;
    const types = await tsCodegen.findAndParseTypes(context.contract.schemas);
    files[0].body = Object.values(types).map(keepJsDoc);
    return files;
  }
}

async function generate(contracts, outPath, client) {
  const options = {
    bundle: { enabled: false },
    types: { enabled: true },
    client: { enabled: client },
    messageComposer: { enabled: false },
    messageBuilder: { enabled: false },
    reactQuery: { enabled: false },
    recoil: { enabled: false },
  };
  await codegen({
    contracts,
    outPath,
    options,
    plugins: [new DocumentedTypesPlugin({ enabled: true, ...options })],
  });
}

async function main() {
  const [schemaDir, outPath] = process.argv.slice(2);
  if (!schemaDir || !outPath) {
    console.error("usage: node codegen.js <schema dir> <out dir>");
    process.exit(2);
  }
  const dir = (name) => path.join(schemaDir, name);
  await generate(
    [
      { name: "Exchange", dir: dir("exchange") },
      { name: "Registry", dir: dir("registry") },
    ],
    outPath,
    true,
  );
  // exchange-data/ holds plain JSON schemas, not an IDL file: ts-codegen warns that this
  // "legacy" mode will go; it is the mode that reads them. Only that warning is muted.
  const warn = console.warn;
  console.warn = (...args) => {
    if (!String(args[0]).includes("missing idl_version")) warn(...args);
  };
  try {
    await generate([{ name: "ExchangeData", dir: dir("exchange-data") }], outPath, false);
  } finally {
    console.warn = warn;
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
