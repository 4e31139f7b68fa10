/**
 * The Lambda cases of `npm run bench` (group `lambda`): in the lab, with the deployment of
 * test/support/lambda-lab.ts (the real handler through the Lambda Runtime API on function nodes behind their
 * NATs, the AWS endpoint, `boxer lambda deploy/run` on vm2):
 *   - invoke → joined, per function: from the endpoint accepting the asynchronous Invoke to the seed admitting
 *     that member (both clocks of this machine), for a cold start (a new execution environment: runtime
 *     process, handler load, secret read from Secrets Manager, NAT discovery, join) and a warm one (the same
 *     environments, reused for a second run);
 *   - the size of the zip `boxer lambda package` builds (Boxer alone, nothing included).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Lab } from '../overlay';
import { LambdaLab, BOXER } from '../test/support/lambda-lab';
import type { Bench } from './cases';

/** One function per NAT kind of the default lab (preserving, shared, random, translating, LAN). */
export const LAMBDA_NODES = ['fp', 'fsa', 'fr', 'fta', 'fla'];
const ROLE = 'arn:aws:iam::123456789012:role/boxer-bench';
/** Bounds against hangs only. */
const CLI_MS = 120_000;

export interface InvokeToJoined {
  node: string;
  ms: number;
  /** Of which: until an execution environment took the event (a cold start's environment start, in the lab). */
  envMs: number;
}

export interface LambdaBenchResult {
  cold: InvokeToJoined[];
  warm: InvokeToJoined[];
  packageBytes: number;
  /** The package command's summary line (sizes of its parts). */
  packageSummary: string;
}

export async function benchLambda(lab: Lab): Promise<LambdaBenchResult> {
  const ll = new LambdaLab(lab, LAMBDA_NODES);
  try {
    await ll.start();
    const zip = path.join(ll.dir, 'boxer.zip');
    const summary = execFileSync(process.execPath, [BOXER, 'lambda', 'package', '--out', zip], { encoding: 'utf8', timeout: CLI_MS });
    const packageBytes = fs.statSync(zip).size;
    const d = await ll.cli(['deploy', '--function', 'bench', '--zip', zip, '--role', ROLE, '--secret-file', ll.secretFile, '--timeout', '60'], CLI_MS);
    if (d.code !== 0) throw new Error(`deploy failed: ${d.err}`);
    const runOnce = async (prefix: string): Promise<InvokeToJoined[]> => {
      const first = ll.invocations.length;
      const n = String(LAMBDA_NODES.length);
      const r = await ll.cli(['run', '--function', 'bench', '--seed', ll.seedAddr, '--secret-file', ll.secretFile, '--nodes', n, '--name', prefix, '--join-timeout', '60', '--', 'true'], CLI_MS);
      if (r.code !== 0) throw new Error(`run failed (${r.code}): ${r.out} ${r.err}`);
      await ll.ep.settled();
      const joins = ll.seedLog().filter((e) => e.what === 'joined');
      return ll.invocations.slice(first).map((inv) => {
        const name = `${prefix}-${String(inv.payload.index)}`;
        const j = joins.find((e) => e.name === name);
        if (!j) throw new Error(`the seed logged no join of ${name}`);
        return { node: inv.node, ms: j.at - inv.acceptedAt, envMs: inv.startedAt - inv.acceptedAt };
      });
    };
    const cold = await runOnce('c');
    const warm = await runOnce('w');
    return { cold, warm, packageBytes, packageSummary: summary.trim().split('\n')[0].replace(/^\S+: [\d.]+ MB /, 'MiB as the command prints them: ') };
  } finally {
    await ll.close();
  }
}

/** The cases: invoke → joined per function, cold and warm; the zip's size. */
export function planLambda(b: Bench): void {
  const over = `${LAMBDA_NODES.length} functions, one per NAT kind (${LAMBDA_NODES.join(', ')})`;
  const title = (how: string) => `Lambda in the lab: asynchronous Invoke accepted → member joined, ${how}`;
  const cold = b.define({ id: 'lambda/invoke-to-joined/cold', group: 'lambda', title: title('new execution environment (cold start)'), unit: 'ms', better: 'lower' }, ['boxer'], { boxer: over }, true, '');
  const warm = b.define({ id: 'lambda/invoke-to-joined/warm', group: 'lambda', title: title('reused execution environment (warm)'), unit: 'ms', better: 'lower' }, ['boxer'], { boxer: over }, true, '');
  const zip = b.define({ id: 'cost/lambda-package', group: 'lambda', title: 'the zip of `boxer lambda package` (Boxer alone)', unit: 'MB', better: 'lower' }, ['boxer'], { boxer: 'one build' }, false, '');
  b.tasks.push({
    label: `lambda: package, deploy, 2 runs of ${LAMBDA_NODES.length} functions`,
    group: 'lambda',
    ids: [cold.c.id, warm.c.id, zip.c.id],
    run: async () => {
      try {
        const r = await benchLambda(b.runner.lab);
        const note = (xs: { node: string; ms: number; envMs: number }[]) => xs.map((x) => `${x.node} ${Math.round(x.ms)} ms (environment ${Math.round(x.envMs)})`).join(', ');
        cold.modes.boxer!.values.push(...r.cold.map((x) => x.ms));
        cold.modes.boxer!.note = note(r.cold);
        warm.modes.boxer!.values.push(...r.warm.map((x) => x.ms));
        warm.modes.boxer!.note = note(r.warm);
        zip.modes.boxer!.values.push(r.packageBytes / 1e6);
        zip.modes.boxer!.note = r.packageSummary;
      } catch (e) {
        for (const a of [cold, warm, zip]) a.modes.boxer!.errors.push((e as Error).message.replace(/\s+/g, ' ').slice(0, 300));
      }
    },
  });
}
