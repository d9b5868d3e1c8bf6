// Times the seed's Node.js handler over the same 8-turn calls as benches/turn_cost.rs, the
// way Lambda runs it: each invocation's event arrives as JSON text and the result leaves as
// JSON text. Prints one JSON line: {"turns":N,"ns_per_turn":X}.
//   node benches/seed_turns.js CALLS
const { handler } = require('../tests/seed/handler.js');

const calls = Number(process.argv[2] || 2000);
const weights = [15, 25, 15, 10, 10, 10, 10];
// The same path as the Rust side: the first invocation, then "0" to all seven questions.
const turns = [];
turns.push(JSON.stringify(event({})));
for (let step = 1; step <= 7; step++) {
  turns.push(JSON.stringify(event({ answer: '0', step: String(step), score: '0', answerScore: String(weights[step - 1]) })));
}
function event(attributes) {
  return {
    Name: 'ContactFlowEvent',
    Details: {
      ContactData: {
        Attributes: attributes, Channel: 'VOICE', ContactId: 'c0ffee00-0000-4000-8000-000000000001',
        CustomerEndpoint: { Address: '+34600000000', Type: 'TELEPHONE_NUMBER' },
        InitialContactId: 'c0ffee00-0000-4000-8000-000000000001', InitiationMethod: 'INBOUND',
        InstanceARN: 'arn:aws:connect:eu-west-1:000000000000:instance/x', PreviousContactId: null,
        Queue: null, SystemEndpoint: { Address: '+34900000000', Type: 'TELEPHONE_NUMBER' },
      },
      Parameters: {},
    },
  };
}

async function run(n) {
  let sink = 0;
  for (let c = 0; c < n; c++) {
    for (const t of turns) {
      const out = JSON.stringify(await handler(JSON.parse(t)));
      sink += out.length;
    }
  }
  return sink;
}

(async () => {
  await run(Math.max(200, calls / 5)); // warm the JIT
  const rounds = [];
  for (let r = 0; r < 5; r++) {   // median of 5 rounds, as the Rust side
    const t0 = process.hrtime.bigint();
    const sink = await run(calls);
    const ns = Number(process.hrtime.bigint() - t0);
    if (sink === 0) throw new Error('no output');
    rounds.push(ns / (calls * turns.length));
  }
  rounds.sort((a, b) => a - b);
  console.log(JSON.stringify({ turns: calls * turns.length, ns_per_turn: rounds[2] }));
})();
