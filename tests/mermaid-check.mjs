// Parses Mermaid diagrams with the real Mermaid parser (npm `mermaid`, in a jsdom window).
// Reads diagrams separated by a line "%%--" on stdin; prints "ok" or "error: ..." per diagram.
// The packages come from the folder CORTADO_NODE_MODULES names.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';

const modules = process.env.CORTADO_NODE_MODULES;
const require = createRequire(modules.replace(/\/?$/, '/'));
const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import(pathToFileURL(require.resolve('mermaid')).href);
let failed = 0;
for (const text of readFileSync(0, 'utf8').split('\n%%--\n')) {
  try {
    const r = await mermaid.parse(text);
    console.log(`ok ${r.diagramType}`);
  } catch (e) {
    failed += 1;
    console.log(`error: ${String(e.message || e).split('\n').slice(0, 4).join(' | ')}`);
  }
}
process.exit(failed ? 1 : 0);
