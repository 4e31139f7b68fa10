#!/usr/bin/env node
// Reads ava's TAP output on stdin, echoes it, and ends with the one summary line CI wants:
// `N passed, N failed` (skipped tests, e.g. lab tests on a machine without root, are counted apart and
// never as passed). Exits non-zero when anything failed or when no test ran at all.
'use strict';
let buf = '';
let pass = 0, fail = 0, skip = 0, todo = 0;
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { buf += d; process.stdout.write(d); });
process.stdin.on('end', () => {
  for (const line of buf.split('\n')) {
    if (/^ok \d+/.test(line)) {
      if (/# SKIP/i.test(line)) skip++; else if (/# TODO/i.test(line)) todo++; else pass++;
    } else if (/^not ok \d+/.test(line)) {
      if (/# TODO/i.test(line)) todo++; else fail++;
    }
  }
  if (pass + fail === 0) fail = 1; // nothing ran: that is a failure, not a green run
  if (skip || todo) console.log(`not run: ${skip} skipped, ${todo} todo`);
  console.log(`${pass} passed, ${fail} failed`);
  process.exitCode = fail ? 1 : 0;
});
