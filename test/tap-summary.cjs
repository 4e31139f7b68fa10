#!/usr/bin/env node
// Reads ava's TAP output on stdin, echoes it, and ends with a line per test tier (test/unit, test/process,
// test/lab: passed, failed, skipped; a tier left out by BOXER_TEST_TIERS says so) and the one summary line CI
// wants: `N passed, N failed` (skipped tests, e.g. lab tests on a machine without root, are counted apart and
// never as passed). Exits non-zero when anything failed, when no test ran at all, or when ava ended without its
// plan line `1..N` or with fewer results than the plan (a crashed reporter or worker: the missing ones count as
// failed, never as a green run).
'use strict';
const TIERS = ['unit', 'process', 'lab'];
const chosen = (process.env.BOXER_TEST_TIERS || TIERS.join(',')).split(',').map((s) => s.trim());
let buf = '';
let pass = 0, fail = 0, skip = 0, todo = 0;
const tiers = Object.fromEntries(TIERS.map((t) => [t, { pass: 0, fail: 0, skip: 0 }]));
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { buf += d; process.stdout.write(d); });
process.stdin.on('end', () => {
  for (const line of buf.split('\n')) {
    const m = /^(not )?ok \d+ - (\w+) ›/.exec(line);
    const tier = m && tiers[m[2]];
    if (/^ok \d+/.test(line)) {
      if (/# SKIP/i.test(line)) { skip++; if (tier) tier.skip++; }
      else if (/# TODO/i.test(line)) todo++;
      else { pass++; if (tier) tier.pass++; }
    } else if (/^not ok \d+/.test(line)) {
      if (/# TODO/i.test(line)) todo++;
      else { fail++; if (tier) tier.fail++; }
    }
  }
  for (const t of TIERS) {
    const c = tiers[t];
    if (!chosen.includes(t)) console.log(`tier ${t}: not run (BOXER_TEST_TIERS=${chosen.join(',')})`);
    else if (c.pass + c.fail === 0 && c.skip > 0) console.log(`tier ${t}: skipped (${c.skip} tests; see "not run" lines above for why)`);
    else console.log(`tier ${t}: ${c.pass} passed, ${c.fail} failed${c.skip ? `, ${c.skip} skipped` : ''}`);
  }
  if (pass + fail === 0) fail = 1; // nothing ran: that is a failure, not a green run
  const plan = /^1\.\.(\d+)\s*$/m.exec(buf);
  const seen = pass + fail + skip + todo;
  if (!plan) {
    console.log('ava ended without its plan line (1..N): the run crashed or was cut short; counted as 1 failed');
    fail++;
  } else if (Number(plan[1]) > seen) {
    console.log(`ava planned ${plan[1]} tests but reported ${seen}: the ${Number(plan[1]) - seen} missing count as failed`);
    fail += Number(plan[1]) - seen;
  }
  if (skip || todo) console.log(`not run: ${skip} skipped, ${todo} todo`);
  console.log(`${pass} passed, ${fail} failed`);
  process.exitCode = fail ? 1 : 0;
});
