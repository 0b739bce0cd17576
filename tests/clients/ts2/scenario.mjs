#!/usr/bin/env node
// The scenarios of ../ts/scenario.mjs with the TypeScript SDK v2 (`@modelcontextprotocol/client`):
//
//   node tests/clients/ts2/scenario.mjs --scenario refresh|reregister http://127.0.0.1:PORT/mcp
//
// Same events on stdout, same exit codes; gives up after 40 s.

import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { runMain, runScenario, scenarioArgs } from '../ts/browser.mjs';

const { name, mcpUrl } = scenarioArgs('scenario.mjs');
const sdk = {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  // v2's preferred form: the callback's parameters, so the SDK checks `iss` itself.
  finishAuth: (transport, callback) => transport.finishAuth(callback),
};
// Keeping the discovery state lets v2 bind the callback to the authorization server (SEP-2352).
runMain(() => runScenario(sdk, name, mcpUrl, { keepDiscovery: true }), 40);
