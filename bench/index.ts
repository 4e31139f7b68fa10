/**
 * `npm run bench [-- --quick] [-- --compare old.json] [-- --out FILE] [-- --no-docs]`: the paper's evaluation
 * in the lab, each Boxer figure beside its native baseline (see docs/benchmarks.md, issue 6). Builds the lab
 * once, probes whether Boxer's data path works (Boxer variants run only then), runs the cases with progress
 * on stderr, writes bench/results.json, docs/benchmarks.md and docs/bench/*.svg. The lab is always torn down,
 * on failure and on SIGINT/SIGTERM too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkLabPrerequisites, Lab, loadTopologyFile } from '../overlay';
import { Bench, config } from './cases';
import { charts, markdown } from './report';
import { compareResults, formatComparison, type MachineInfo, type Results } from './results';
import { boxerDataPathAvailable, ROOT, Runner } from './runner';

export interface Args {
  quick: boolean;
  compare?: string;
  out: string;
  docs: boolean;
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, out: path.join(ROOT, 'bench', 'results.json'), docs: true };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${x} needs a value`);
      return v;
    };
    if (x === '--quick') a.quick = true;
    else if (x === '--compare') a.compare = value();
    else if (x.startsWith('--compare=')) a.compare = x.slice(10);
    else if (x === '--out') a.out = path.resolve(value());
    else if (x.startsWith('--out=')) a.out = path.resolve(x.slice(6));
    else if (x === '--no-docs') a.docs = false;
    else if (x === '--') continue;
    else throw new Error(`unknown argument ${x} (usage: npm run bench [-- --quick] [--compare old.json] [--out FILE] [--no-docs])`);
  }
  return a;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    memGiB: os.totalmem() / 2 ** 30,
    hostname: os.hostname(),
  };
}

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const old = args.compare ? (JSON.parse(fs.readFileSync(args.compare, 'utf8')) as Results) : undefined;
  const pre = checkLabPrerequisites();
  if (!pre.ok) {
    log(`bench: cannot build the lab: ${pre.reason}`);
    return 80;
  }
  const t0 = Date.now();
  log(`bench: building the lab (${args.quick ? 'quick' : 'full'} run) ...`);
  let lab: Lab | undefined;
  let runner: Runner | undefined;
  const cleanup = () => lab?.downSync();
  const onSignal = (sig: NodeJS.Signals) => {
    log(`bench: ${sig}, tearing the lab down`);
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', cleanup);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    lab = await Lab.up(loadTopologyFile(), {});
    log(`bench: lab ${lab.prefix} is up`);
    runner = new Runner(lab);
    log('bench: probing the Boxer data path ...');
    const boxer = await boxerDataPathAvailable(runner);
    log(`bench: Boxer data path ${boxer.available ? 'available' : 'NOT available'}: ${boxer.reason}`);
    const bench = new Bench(config(args.quick), runner, boxer);
    bench.plan();
    const n = bench.tasks.length;
    for (const [i, task] of bench.tasks.entries()) {
      log(`[${i + 1}/${n}] ${task.label}`);
      await task.run();
    }
    await runner.stopAll();
    const results: Results = {
      version: 1,
      date: new Date().toISOString(),
      quick: args.quick,
      durationS: (Date.now() - t0) / 1000,
      machine: machineInfo(),
      boxerDataPath: boxer,
      cases: bench.finish(),
    };
    fs.mkdirSync(path.dirname(args.out), { recursive: true });
    fs.writeFileSync(args.out, JSON.stringify(results, null, 1) + '\n');
    log(`bench: wrote ${path.relative(process.cwd(), args.out) || args.out}`);
    if (args.docs) {
      const dir = path.join(ROOT, 'docs', 'bench');
      fs.mkdirSync(dir, { recursive: true });
      const cs = charts(results);
      for (const c of cs) fs.writeFileSync(path.join(dir, c.file), c.svg);
      fs.writeFileSync(path.join(ROOT, 'docs', 'benchmarks.md'), markdown(results, cs.map((c) => c.file)));
      log(`bench: wrote docs/benchmarks.md and ${cs.map((c) => `docs/bench/${c.file}`).join(', ')}`);
    }
    for (const c of results.cases) {
      const f = (v?: (typeof c)['native']) => (v ? (v.status === 'measured' ? `${v.summary.median.toPrecision(4)} ${c.unit}` : 'not measured') : '-');
      log(`  ${c.id.padEnd(34)} native ${f(c.native).padEnd(18)} boxer ${f(c.boxer)}`);
    }
    if (old) console.log(formatComparison(compareResults(old, results)));
    return 0;
  } finally {
    await runner?.stopAll().catch(() => undefined);
    const prefix = lab?.prefix;
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (prefix) log(`bench: lab ${prefix} torn down (${((Date.now() - t0) / 1000).toFixed(0)} s in all)`);
  }
}

if (require.main === module) {
  main()
    .then((code) => process.exit(code))
    .catch((e: Error) => {
      log(`bench failed: ${e.stack ?? e.message}`);
      process.exit(1);
    });
}
