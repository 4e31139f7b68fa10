/**
 * The lab's pure contracts (no kernel, no root): topology validation with its errors, the plan's addresses,
 * and the generated rulesets. The lab itself is tested in test/lab/lifecycle.test.ts.
 */

import test from 'ava';
import { DEFAULT_TOPOLOGY_FILE, loadTopologyFile, NAT_KINDS, planTopology, TopologyError, type Topology } from '../../overlay';
import { gatewayRuleset } from '../../overlay/netfilter';

test('the default topology is valid and has every NAT kind, hairpin, lan and shared gateways', (t) => {
  const plan = planTopology(loadTopologyFile(DEFAULT_TOPOLOGY_FILE));
  t.deepEqual([...new Set(plan.gateways.map((g) => g.kind))].sort(), [...NAT_KINDS].sort());
  t.deepEqual(plan.hosts.map((h) => h.name), ['seed', 'vm1', 'vm2']);
  t.true(plan.gateways.some((g) => g.kind === 'preserving' && g.functions.length === 1));
  t.true(plan.gateways.some((g) => g.kind === 'preserving' && g.functions.length >= 2 && g.hairpin && !g.lan));
  t.true(plan.gateways.some((g) => g.kind === 'translating' && g.functions.length >= 2));
  t.true(plan.gateways.some((g) => g.kind === 'preserving' && g.lan));
  for (const g of plan.gateways) {
    t.regex(g.address, /^198\.1[89]\./);
    t.regex(g.subnet, /^10\./);
    // Port blocks of one gateway are disjoint.
    const blocks = g.functions.map((f) => f.portRange).sort((a, b) => a.low - b.low);
    for (let i = 1; i < blocks.length; i++) t.true(blocks[i].low > blocks[i - 1].high);
  }
});

const base = (): Topology => ({
  hosts: [{ name: 'seed' }],
  gateways: [{ name: 'g', kind: 'preserving', subnet: '10.9.0.0/24', functions: ['f1', 'f2'] }],
});

test('addresses are assigned when omitted', (t) => {
  const plan = planTopology(base());
  t.is(plan.internet, '198.18.0.0/15');
  t.is(plan.hosts[0].address, '198.18.0.2');
  t.is(plan.gateways[0].address, '198.18.0.3');
  t.deepEqual(plan.gateways[0].functions.map((f) => f.address), ['10.9.0.2', '10.9.0.3']);
  t.is(plan.gateways[0].lanAddress, '10.9.0.1');
});

const invalid: [string, (t: Topology) => void, RegExp][] = [
  ['a name too long for an interface', (x) => (x.hosts[0].name = 'averylongname'), /name "averylongname"|must match/],
  ['a duplicate name', (x) => (x.gateways[0].functions = ['f1', 'f1']), /used twice/],
  ['a reserved name', (x) => (x.hosts[0].name = 'net'), /reserved/],
  ['an unknown kind', (x) => ((x.gateways[0] as { kind: string }).kind = 'symmetric'), /kind must be one of/],
  ['an unknown key', (x) => ((x.gateways[0] as unknown as Record<string, unknown>).hairpinn = true), /unknown key "hairpinn"/],
  ['hairpin on a random gateway', (x) => Object.assign(x.gateways[0], { kind: 'random', hairpin: true }), /hairpin/],
  ['a subnet in 100.64.0.0/10', (x) => (x.gateways[0].subnet = '100.96.0.0/16'), /private range|100\.64\.0\.0\/10/],
  ['a public subnet behind a NAT', (x) => (x.gateways[0].subnet = '8.8.8.0/24'), /private range/],
  ['an internet in 100.64.0.0/10', (x) => (x.internet = '100.64.0.0/16'), /100\.64\.0\.0\/10/],
  ['an address outside the internet', (x) => (x.hosts[0].address = '10.0.0.1'), /not a host address in 198\.18/],
  ['a loss over 100%', (x) => (x.gateways[0].loss = 150), /loss/],
  ['a malformed rate', (x) => (x.gateways[0].rate = 'fast'), /rate/],
  ['a zero rate', (x) => (x.gateways[0].rate = '0mbit'), /rate/],
  ['a fractional idle timeout', (x) => (x.gateways[0].idleTimeout = 1.5), /idleTimeout/],
  ['too many translated functions', (x) => Object.assign(x.gateways[0], { kind: 'translating', subnet: '10.9.0.0/16', functions: Array.from({ length: 17 }, (_, i) => `f${i}`) }), /too many functions/],
];
for (const [what, mutate, re] of invalid)
  test(`validation rejects ${what}`, (t) => {
    const topo = base();
    mutate(topo);
    const e = t.throws(() => planTopology(topo), { instanceOf: TopologyError });
    t.regex(e!.message, re);
  });

test('validation lists every problem at once', (t) => {
  const e = t.throws(() => planTopology({ hosts: [{ name: 'BAD' }], gateways: [{ name: 'g', kind: 'x', subnet: 'y', functions: [] }] }), {
    instanceOf: TopologyError,
  });
  t.true(e!.problems.length >= 4, e!.message);
});

test('translating ruleset: one XOR rule per function block, TCP outside the blocks dropped', (t) => {
  const plan = planTopology({
    hosts: [],
    gateways: [{ name: 't', kind: 'translating', address: '198.18.1.4', subnet: '10.4.0.0/24', functions: ['a', 'b'] }],
  });
  const rs = gatewayRuleset(plan.gateways[0]);
  t.regex(rs, /tcp dport 49152-57343 ip daddr set 10\.4\.0\.2 tcp dport set tcp dport \^ 0x8000/);
  t.regex(rs, /tcp dport 57344-65535 ip daddr set 10\.4\.0\.3 tcp dport set tcp dport \^ 0x8000/);
  t.regex(rs, /tcp sport != \{ 16384-24575, 24576-32767 \} drop/);
  t.regex(rs, /ct state established,related accept/);
  t.notRegex(rs, /oifname "wan" masquerade\n/);
});

test('random ruleset uses masquerade random; preserving with hairpin learns mappings', (t) => {
  const plan = planTopology({
    hosts: [],
    gateways: [
      { name: 'r', kind: 'random', subnet: '10.3.0.0/24', functions: ['a'] },
      { name: 'p', kind: 'preserving', subnet: '10.2.0.0/24', hairpin: true, functions: ['b', 'c'] },
    ],
  });
  t.regex(gatewayRuleset(plan.gateways[0]), /masquerade random/);
  const p = gatewayRuleset(plan.gateways[1]);
  t.regex(p, /update @hairpin/);
  t.regex(p, /dnat ip to tcp dport map @hairpin/);
});
