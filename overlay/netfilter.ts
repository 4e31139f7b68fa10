/**
 * The NAT kinds themselves: the nftables ruleset each gateway namespace loads, and the runtime knobs that
 * change a gateway's rules (loss). Pure text generation, unit-tested without root; overlay/lab.ts loads the
 * result with `nft -f`. How each kind behaves, and what real NAT it stands for, is in docs/lab.md.
 *
 * Every gateway has one table, `ip boxer`, with interfaces named as overlay/lab.ts creates them: `wan` (the
 * internet side, carrying the public address) and `br0` (the bridge its functions' veths are ports of).
 */

import { PlannedGateway, TRANSLATE_XOR } from './topology';

export const TABLE = 'boxer';
export const LOSS_CHAIN = 'loss';
/** Interface names inside a gateway namespace. */
export const WAN_IF = 'wan';
export const LAN_BRIDGE = 'br0';

/**
 * How long a learned hairpin mapping (public port -> function) is kept without outbound traffic refreshing
 * it: an hour outlives any lab run, and a stale entry only makes a hairpinned SYN meet a closed port.
 */
const HAIRPIN_MAPPING_TTL_S = 3600;

/** Ruleset for one gateway, loaded atomically by `nft -f` (the table is replaced when it exists). */
export function gatewayRuleset(gw: PlannedGateway): string {
  const ext = gw.address;
  const lines: string[] = [];
  const add = (s = '') => lines.push(s);

  add(`table ip ${TABLE}`);
  add(`delete table ip ${TABLE}`);
  add(`table ip ${TABLE} {`);
  if (gw.hairpin) {
    // Filled from the packet path: public port -> (function address . local port), learned from each
    // function's outbound packets after source NAT, so hairpinning follows the real dynamic mappings.
    add(`  map hairpin {`);
    add(`    type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout ${HAIRPIN_MAPPING_TTL_S}s;`);
    add(`  }`);
  }

  // Stateful filtering: functions may open anything outward; from outside only replies come in.
  add(`  chain filter_forward {`);
  add(`    type filter hook forward priority filter; policy drop;`);
  if (gw.kind === 'translating') {
    // Only a function's own port block can be translated back; anything else would leave and never return.
    add(`    iifname "${LAN_BRIDGE}" oifname "${WAN_IF}" meta l4proto tcp tcp sport != ${translatedLocalSet(gw)} drop`);
  }
  add(`    iifname "${LAN_BRIDGE}" oifname "${WAN_IF}" accept`);
  add(`    ct state established,related accept`);
  if (gw.hairpin) add(`    iifname "${LAN_BRIDGE}" oifname "${LAN_BRIDGE}" ct status dnat accept`);
  add(`  }`);

  // The gateway itself answers nothing from outside (a real NAT drops, it does not reset).
  add(`  chain filter_input {`);
  add(`    type filter hook input priority filter; policy accept;`);
  add(`    iifname "${WAN_IF}" ct state established,related accept`);
  add(`    iifname "${WAN_IF}" drop`);
  add(`  }`);

  // Degraded link: filled at run time by lossRule().
  add(`  chain ${LOSS_CHAIN} {`);
  add(`    type filter hook forward priority -10;`);
  if (gw.loss > 0) add(`    ${lossRule(gw.loss)}`);
  add(`  }`);

  switch (gw.kind) {
    case 'preserving':
    case 'random':
      add(`  chain nat_prerouting {`);
      add(`    type nat hook prerouting priority dstnat;`);
      if (gw.hairpin) add(`    iifname "${LAN_BRIDGE}" ip daddr ${ext} dnat ip to tcp dport map @hairpin`);
      add(`  }`);
      add(`  chain nat_postrouting {`);
      add(`    type nat hook postrouting priority srcnat;`);
      add(`    oifname "${WAN_IF}" masquerade${gw.kind === 'random' ? ' random' : ''}`);
      // Hairpinned traffic leaves from the public address, as a peer on the internet would see it.
      if (gw.hairpin) add(`    oifname "${LAN_BRIDGE}" ct status dnat ip saddr ${gw.subnet} snat ip to ${ext}`);
      add(`  }`);
      if (gw.hairpin) {
        // After source NAT (priority srcnat + 100) the header carries the public port.
        add(`  chain hairpin_learn {`);
        add(`    type filter hook postrouting priority 200;`);
        add(`    oifname "${WAN_IF}" ct direction original meta l4proto tcp update @hairpin { tcp sport : ct original ip saddr . ct original proto-src }`);
        add(`  }`);
      }
      break;
    case 'translating': {
      // Stateless in both directions; conntrack (which runs at priority -200) only ever sees private
      // addresses and local ports, and so still filters statefully.
      add(`  chain xlate_in {`);
      add(`    type filter hook prerouting priority -350;`);
      for (const fn of gw.functions) {
        const lo = fn.portRange.low ^ TRANSLATE_XOR;
        const hi = fn.portRange.high ^ TRANSLATE_XOR;
        add(`    iifname "${WAN_IF}" ip daddr ${ext} tcp dport ${lo}-${hi} ip daddr set ${fn.address} tcp dport set tcp dport ^ ${hex(TRANSLATE_XOR)}`);
      }
      add(`  }`);
      add(`  chain xlate_out {`);
      add(`    type filter hook postrouting priority 300;`);
      add(`    oifname "${WAN_IF}" ip saddr ${gw.subnet} tcp sport set tcp sport ^ ${hex(TRANSLATE_XOR)} ip saddr set ${ext}`);
      add(`  }`);
      // Non-TCP traffic (ping, DNS-like UDP) still gets out, through an ordinary NAT.
      add(`  chain nat_postrouting {`);
      add(`    type nat hook postrouting priority srcnat;`);
      add(`    oifname "${WAN_IF}" meta l4proto != tcp masquerade`);
      add(`  }`);
      break;
    }
  }
  add(`}`);
  return lines.join('\n') + '\n';
}

/** Loss is drawn out of this many buckets: percentages to two decimals (0.05% loss is a real link). */
const LOSS_BUCKETS = 10000;

/** The rule the loss chain holds for a loss of `pct` percent (both directions through the gateway). */
export function lossRule(pct: number): string {
  const buckets = Math.round((pct / 100) * LOSS_BUCKETS);
  // numgen's result is below the modulus, so "< modulus" is rejected: total loss is a plain drop.
  return buckets >= LOSS_BUCKETS ? 'drop' : `numgen random mod ${LOSS_BUCKETS} < ${buckets} drop`;
}

function translatedLocalSet(gw: PlannedGateway): string {
  return `{ ${gw.functions.map((f) => `${f.portRange.low}-${f.portRange.high}`).join(', ')} }`;
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}
