// Tests are written in TypeScript and compiled by `npm run build:ts` into dist/ before ava runs. They are
// arranged by tier (docs/architecture.md, "Testing tiers"): test/unit (in memory), test/process (real
// processes and sockets on loopback), test/lab (root: network namespaces behind real NATs). BOXER_TEST_TIERS
// (e.g. `unit,process`) runs some tiers only; the summary line says which ran and which were left out.
const TIERS = ['unit', 'process', 'lab'];
const chosen = (process.env.BOXER_TEST_TIERS || TIERS.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const unknown = chosen.filter((t) => !TIERS.includes(t));
if (unknown.length) throw new Error(`BOXER_TEST_TIERS: unknown tier ${unknown.join(', ')} (tiers: ${TIERS.join(', ')})`);

module.exports = {
  files: chosen.map((t) => `dist/test/${t}/**/*.test.js`),
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
  verbose: true,
};
