// Derives the seed's verdict for every answer path by running the seed's own handler the
// way its Connect flow did: each response's step/score/answerScore go back in as contact
// attributes, with the caller's digit as `answer`.
//   node tests/seed/oracle.js > tests/seed/seed_table.json
// Rows: every one of the 128 yes/no paths (digits 1/0 for the 7 questions), and `*`
// pressed at every question after every yes/no prefix that reaches it.
const { handler } = require('./handler.js');

async function run(digits) {
  let attrs = {};
  const texts = [];
  let r = await handler({ Details: { ContactData: { Attributes: attrs } } });
  let used = 0;
  while (true) {
    if (r.continue === 1) texts.push(r.text);
    if (r.continue !== 1 || used === digits.length) break;
    const answer = digits[used++];
    if (answer === '*') {
      // The seed answers `*` with {continue:1, text:''} and no score: the flow then
      // leaves. Its running score is the one carried in the attributes.
      const carried = { step: String(r.step), score: String(r.score), answerScore: String(r.answerScore) };
      const star = await handler({ Details: { ContactData: { Attributes: { ...carried, answer } } } });
      return { digits: digits.join(''), used, seed_continue: star.continue, seed_text: star.text,
               outcome: 'exited', score: Number(r.score || 0), prompts: texts };
    }
    attrs = { answer, step: String(r.step), score: String(r.score), answerScore: String(r.answerScore) };
    r = await handler({ Details: { ContactData: { Attributes: attrs } } });
  }
  let outcome = null;
  if (r.continue === 0) {
    if (r.text.startsWith('Sus síntomas requieren')) outcome = 'hospital';
    else if (r.text.startsWith('Tiene síntomas')) outcome = 'monitor';
    else if (r.text.startsWith('Su diagnóstico no indica')) outcome = 'clear';
  }
  return { digits: digits.join(''), used, outcome, score: r.score, final_text: r.text, prompts: texts };
}

(async () => {
  const rows = [];
  for (let n = 0; n < 128; n++) {
    const digits = [];
    for (let i = 6; i >= 0; i--) digits.push(String((n >> i) & 1));
    rows.push(await run(digits));
  }
  const seen = new Set();
  for (let k = 0; k < 7; k++) {
    for (let n = 0; n < (1 << k); n++) {
      const prefix = [];
      for (let i = k - 1; i >= 0; i--) prefix.push(String((n >> i) & 1));
      const row = await run([...prefix, '*']);
      if (row.outcome === 'exited' && !seen.has(row.digits)) { seen.add(row.digits); rows.push(row); }
    }
  }
  process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
})();
