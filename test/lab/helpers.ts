/**
 * `labTest`: how a test file gets a lab. When the lab cannot be built here (not root, a tool missing) every
 * test is registered with `test.skip` (reported as not run, never as passed) and the reason is printed.
 * Otherwise one lab is built per test file (test.before) and removed in test.after.always, and also on
 * process exit, SIGINT and SIGTERM, so an interrupted or failing run leaves nothing behind. Labs of earlier
 * runs whose owner process died are swept first.
 */

import test, { type ExecutionContext } from 'ava';
import { checkLabPrerequisites, Lab, type Topology } from '../../overlay';

export type LabImpl = (t: ExecutionContext, lab: Lab) => Promise<void> | void;

export interface LabTest {
  /** Registers a concurrent test (or a skipped one when no lab can be built). */
  test(title: string, impl: LabImpl): void;
  /** Registers a serial test: ava runs them before the concurrent ones, one at a time (for knob changes). */
  serial(title: string, impl: LabImpl): void;
  /** Whether the tests will run. */
  readonly available: boolean;
}

export interface LabTestOptions {
  /** Default: overlay/default-topology.json. */
  topology?: Topology;
  prefix?: string;
}

const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export function labTest(opts: LabTestOptions = {}): LabTest {
  const pre = checkLabPrerequisites();
  if (!pre.ok) {
    console.log(`lab tests not run: ${pre.reason}`);
    const skip = (title: string) => test.skip(title, () => undefined);
    return { test: skip, serial: skip, available: false };
  }

  let lab: Lab | undefined;
  const onExit = () => lab?.downSync();
  const onSignal = (signal: NodeJS.Signals) => {
    lab?.downSync();
    for (const s of EXIT_SIGNALS) process.removeListener(s, onSignal);
    process.kill(process.pid, signal); // die of the signal, as without us
  };

  test.before(async () => {
    Lab.sweepStale();
    process.once('exit', onExit);
    for (const s of EXIT_SIGNALS) process.on(s, onSignal);
    lab = await Lab.up(opts.topology, { prefix: opts.prefix });
  });
  test.after.always(async () => {
    await lab?.down();
    process.removeListener('exit', onExit);
    for (const s of EXIT_SIGNALS) process.removeListener(s, onSignal);
  });

  const wrap = (impl: LabImpl) => (t: ExecutionContext) => {
    if (!lab) throw new Error('the lab was not built (see the before hook failure)');
    return impl(t, lab);
  };
  return {
    test: (title, impl) => test(title, wrap(impl)),
    serial: (title, impl) => test.serial(title, wrap(impl)),
    available: true,
  };
}
