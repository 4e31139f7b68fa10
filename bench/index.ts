/**
 * `npm run bench [-- --quick] [--only PREFIX] [--compare old.json] [--out FILE] [--docs | --no-docs]`: the
 * paper's evaluation in the lab, each Boxer figure beside its native baseline (see docs/benchmarks.md, issue
 * 6). Builds the lab once, probes whether Boxer's data path works (Boxer variants run only then), runs the
 * cases with progress on stderr, writes the results and, for a full run, docs/benchmarks.md and
 * docs/bench/*.svg. Only a full run writes bench/results.json by default; quick and --only runs write
 * bench/results-quick.json and bench/results-partial.json (both gitignored) and leave docs/ alone unless
 * --docs is given, so that they never overwrite the committed full results. The lab is always torn down, on
 * failure and on SIGINT/SIGTERM too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkLabPrerequisites, Lab, loadTopologyFile } from '../overlay';
import { Bench, config } from './cases';
import { markdown } from './report';
import { charts } from './charts';
import { checkGuards, compareResults, formatComparison, formatGuards, type MachineInfo, type Results } from './results';
import { boxerDataPathAvailable, ROOT, Runner } from './runner';

/** The committed results of a full run, and where quick and filtered runs write theirs instead. */
export const FULL_RESULTS = path.join(ROOT, 'bench', 'results.json');
export const QUICK_RESULTS = path.join(ROOT, 'bench', 'results-quick.json');
export const PARTIAL_RESULTS = path.join(ROOT, 'bench', 'results-partial.json');

export const USAGE = `usage: npm run bench -- [options]
  (none)            the full run (~13 min here): writes bench/results.json, docs/benchmarks.md, docs/bench/*.svg
  --quick           a smoke test of every group in under two minutes (fewer, shorter repetitions);
                    writes bench/results-quick.json, leaves docs/ alone
  --only PREFIX     run only the cases whose group, id or progress label starts with PREFIX (repeatable, or
                    comma-separated: --only aggregate, --only cost/setup-cpu, --only "throughput vm-to-vm");
                    writes bench/results-partial.json, leaves docs/ alone
  --out FILE        write the results to FILE instead (quick and --only runs may not write bench/results.json)
  --docs            also write docs/benchmarks.md and docs/bench/*.svg (the default for a full run only;
                    not with --only, whose docs would lack every other case)
  --no-docs         never write docs/
  --compare OLD     print the per-figure change from the results file OLD, and check the guards of the
                    connection set-up figures (bench/results.ts GUARDS): exit status 3 if one is broken`;

export interface Args {
  quick: boolean;
  compare?: string;
  out: string;
  docs: boolean;
  /** Prefixes of the groups, case ids or task labels to run; empty: all. */
  only: string[];
}

export function parseArgs(argv: string[]): Args {
  let quick = false;
  let compare: string | undefined;
  let out: string | undefined;
  let docs: boolean | undefined;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${x} needs a value\n${USAGE}`);
      return v;
    };
    const addOnly = (v: string) => {
      const parts = v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      if (!parts.length) throw new Error(`--only needs a prefix\n${USAGE}`);
      only.push(...parts);
    };
    if (x === '--quick') quick = true;
    else if (x === '--compare') compare = value();
    else if (x.startsWith('--compare=')) compare = x.slice(10);
    else if (x === '--out') out = path.resolve(value());
    else if (x.startsWith('--out=')) out = path.resolve(x.slice(6));
    else if (x === '--only') addOnly(value());
    else if (x.startsWith('--only=')) addOnly(x.slice(7));
    else if (x === '--docs') docs = true;
    else if (x === '--no-docs') docs = false;
    else if (x === '--help' || x === '-h') throw new Error(USAGE);
    else if (x === '--') continue;
    else throw new Error(`unknown argument ${x}\n${USAGE}`);
  }
  const full = !quick && !only.length;
  if (docs && only.length) throw new Error(`--docs with --only would write docs/benchmarks.md without the other cases\n${USAGE}`);
  out ??= full ? FULL_RESULTS : quick ? QUICK_RESULTS : PARTIAL_RESULTS;
  if (!full && out === FULL_RESULTS) throw new Error(`bench/results.json holds the full run's results: give a quick or --only run another --out\n${USAGE}`);
  return { quick, ...(compare !== undefined ? { compare } : {}), out, docs: docs ?? full, only };
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

/** With --only: whether it selects any task (a dry plan: plan() only builds closures, nothing touches the lab). */
function selectsSomething(args: Args): boolean {
  if (!args.only.length) return true;
  const dry = new Bench(config(args.quick), new Runner({} as Lab), { available: true, reason: '' }, args.only);
  dry.plan();
  if (dry.tasks.length) return true;
  log(`bench: --only ${args.only.join(',')} selects nothing (groups: ${dry.groups().join(', ')})`);
  return false;
}

/** Writes the results file, and (unless --no-docs) docs/benchmarks.md and its charts; lists the figures on stderr. */
function writeResults(results: Results, args: Args): void {
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(results, null, 1) + '\n');
  log(`bench: wrote ${path.relative(process.cwd(), args.out) || args.out}`);
  if (args.docs) {
    const dir = path.join(ROOT, 'docs', 'bench');
    fs.mkdirSync(dir, { recursive: true });
    const cs = charts(results);
    for (const c of cs) fs.writeFileSync(path.join(dir, c.file), c.svg);
    const docsDir = path.join(ROOT, 'docs');
    fs.writeFileSync(path.join(docsDir, 'benchmarks.md'), markdown(results, cs.map((c) => c.file), path.relative(docsDir, args.out)));
    log(`bench: wrote docs/benchmarks.md and ${cs.map((c) => `docs/bench/${c.file}`).join(', ')}`);
  }
  for (const c of results.cases) {
    const f = (v?: (typeof c)['native']) => (v ? (v.status === 'measured' ? `${v.summary.median.toPrecision(4)} ${c.unit}` : 'not measured') : '-');
    log(`  ${c.id.padEnd(34)} native ${f(c.native).padEnd(18)} boxer ${f(c.boxer)}`);
  }
}

/** `--compare`: the change of every figure, and the guards of the set-up figures (a broken one: exit status 3). */
function compareWith(old: Results, results: Results): number {
  console.log(formatComparison(compareResults(old, results)));
  const checks = checkGuards(results);
  console.log(formatGuards(checks));
  return checks.some((x) => x.ok === false) ? 3 : 0;
}

async function main(args: Args): Promise<number> {
  const old = args.compare ? (JSON.parse(fs.readFileSync(args.compare, 'utf8')) as Results) : undefined;
  const pre = checkLabPrerequisites();
  if (!pre.ok) {
    log(`bench: cannot build the lab: ${pre.reason}`);
    return 80;
  }
  if (!selectsSomething(args)) return 2;
  const t0 = Date.now();
  log(`bench: building the lab (${args.quick ? 'quick' : 'full'} run${args.only.length ? `, only ${args.only.join(', ')}` : ''}) ...`);
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
    const bench = new Bench(config(args.quick), runner, boxer, args.only);
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
      ...(args.only.length ? { only: args.only } : {}),
      durationS: (Date.now() - t0) / 1000,
      machine: machineInfo(),
      boxerDataPath: boxer,
      cases: bench.finish(),
    };
    writeResults(results, args);
    return old ? compareWith(old, results) : 0;
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
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    const help = (e as Error).message === USAGE;
    (help ? console.log : log)((e as Error).message);
    process.exit(help ? 0 : 2);
  }
  main(args)
    .then((code) => process.exit(code))
    .catch((e: Error) => {
      log(`bench failed: ${e.stack ?? e.message}`);
      process.exit(1);
    });
}
