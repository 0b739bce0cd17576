#!/usr/bin/env node
// Calls every tool of mcp-broker with the TypeScript MCP SDK v1 (`@modelcontextprotocol/sdk`):
//
//   node tests/clients/ts/tools.mjs http://127.0.0.1:PORT/mcp
//
// Signs in asking for the plan's scope (`../tools.json`: the defaults plus `repo:write`) through
// the SDK's `auth()` (see `signInWithScope` in browser.mjs), lists the tools, makes the plan's
// calls in order, and lists the tools again. A call's string argument `$label.field` is the field
// of an earlier call's result (its first text block, as JSON); a call's label is its tool's name
// unless the plan names one.
//
// stdout: the events of browser.mjs (`CLIENT_ID`, `BROWSER_WALK`, `TOKENS`, `HTTP ...`) and, once
// every call is made, one line `TOOL_RESULTS <json>`:
//   {"tools": {"at_sign_in": [names], "at_end": [names]},
//    "results": {"<label>": {"is_error": bool, "text": "<first text block>"}, ...}}
// Exit 0 then, whatever the tools answered (tool errors are results too). Diagnostics go to
// stderr; a failure to sign in, call or resolve a reference exits non-zero with `FAILED:`.
// Gives up after 60 s.

import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { event, fail, log, runMain, signInWithScope } from './browser.mjs';

const [url] = process.argv.slice(2);
if (!URL.canParse(url ?? '')) fail('usage: node tools.mjs <MCP_URL>');
const mcpUrl = new URL(url);
const plan = JSON.parse(readFileSync(new URL('../tools.json', import.meta.url), 'utf8'));
const sdk = { Client, StreamableHTTPClientTransport, UnauthorizedError, auth };

async function listToolNames(client) {
  const names = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  return names;
}

/** `$label.field` strings replaced by that field of the earlier result, anywhere in `value`. */
function resolve(value, results) {
  if (typeof value === 'string' && value.startsWith('$')) {
    const [label, field] = value.slice(1).split('.');
    const earlier = results[label];
    if (!earlier || earlier.is_error) throw new Error(`${value}: no successful result labelled ${label}`);
    const found = JSON.parse(earlier.text)[field];
    if (found === undefined) throw new Error(`${value}: ${label}'s result has no ${field}: ${earlier.text}`);
    return found;
  }
  if (Array.isArray(value)) return value.map((v) => resolve(v, results));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, results)]));
  }
  return value;
}

runMain(async () => {
  const { client } = await signInWithScope(sdk, mcpUrl, plan.scope);
  const atSignIn = await listToolNames(client);
  const results = {};
  for (const call of plan.calls) {
    const label = call.label ?? call.tool;
    const result = await client.callTool({ name: call.tool, arguments: resolve(call.arguments, results) });
    const text = result.content?.find((c) => c.type === 'text')?.text;
    if (text === undefined) throw new Error(`${label}: no text content in ${JSON.stringify(result)}`);
    results[label] = { is_error: result.isError === true, text };
    log(`${label}: ${result.isError ? 'tool error' : 'ok'}`);
  }
  const atEnd = await listToolNames(client);
  await client.close();
  event('TOOL_RESULTS', JSON.stringify({ tools: { at_sign_in: atSignIn, at_end: atEnd }, results }));
}, 60);
