#!/usr/bin/env node
// The seed's Node.js handler (tests/seed/handler.js) served under the Lambda Runtime API,
// the baseline of `cargo bench --bench lambda_turn` (issue 14, point 5): the loop every
// Lambda runtime runs (GET .../invocation/next, call the handler, POST
// .../invocation/{id}/response: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html),
// on Node's own `http` with a keep-alive agent. The managed nodejs runtime's client lives in
// AWS's image and is not here: this is its stand-in, so Node's figures are an estimate of
// the runtime's cost, the handler's own exact. The handler persists nothing.
'use strict';
const http = require('http');
const { handler } = require('../tests/seed/handler.js');

const [host, port] = (process.env.AWS_LAMBDA_RUNTIME_API || '').split(':');
if (!host || !port) {
  console.error('seed_runtime: AWS_LAMBDA_RUNTIME_API is not set (host:port)');
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const base = '/2018-06-01/runtime/invocation';

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request({ host, port: Number(port), method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setNoDelay(true);
    req.on('error', reject);
    req.end(body);
  });
}

(async () => {
  for (;;) {
    const next = await request('GET', `${base}/next`);
    const id = next.headers['lambda-runtime-aws-request-id'];
    let out;
    try {
      out = JSON.stringify(await handler(JSON.parse(next.body)));
    } catch (e) {
      await request('POST', `${base}/${id}/error`, JSON.stringify({ errorType: e.name, errorMessage: String(e.message) }));
      continue;
    }
    await request('POST', `${base}/${id}/response`, out);
  }
})().catch((e) => {
  console.error(`seed_runtime: ${e.stack || e}`);
  process.exit(1);
});
