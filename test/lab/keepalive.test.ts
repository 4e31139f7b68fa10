/**
 * NATs drop idle flows (AWS NAT gateways after 350 s, some after 30 s). The shim turns TCP keepalive on for
 * program connections, below that: here both gateways drop flows idle for 4 s, keepalive runs every 2 s
 * on the client (BOXER_KEEPALIVE_IDLE_S), and a connection idle for 10 s survives; the same connection with
 * keepalive turned off by the client program itself does not.
 */
import { labTest } from '../lab/helpers';
import { LabNet, PROGRAMS } from './labnet';

const lt = labTest();
const NAT_IDLE_S = 4;
const IDLE_S = 10;

lt.serial('a punched connection idle for longer than the NATs allow survives through keepalives', async (t, lab) => {
  t.timeout(3 * 60_000);
  await lab.setIdleTimeout('pres', NAT_IDLE_S);
  await lab.setIdleTimeout('trans', NAT_IDLE_S);
  const net = new LabNet(lab);
  try {
    await net.startSeed();
    const env = { BOXER_KEEPALIVE_IDLE_S: '2' };
    // The server keeps the default keepalive (60 s, longer than the test), so only the client's counts.
    net.member('fta', 'echo', 3, ['python3', `${PROGRAMS}/echo.py`, '7007']);
    const kept = net.member('fp', 'kept', 3, ['python3', `${PROGRAMS}/idle.py`, 'echo', '7007', String(IDLE_S)], { env });
    const bare = net.member('fp', 'bare', 3, ['python3', `${PROGRAMS}/idle.py`, 'echo', '7007', String(IDLE_S)], { env: { ...env, KEEPALIVE: 'off' } });
    t.regex((await net.waitFor(kept, /^FIRST .*$/m))[0], /FIRST ok/);
    t.regex((await net.waitFor(bare, /^FIRST .*$/m))[0], /FIRST ok/);
    t.regex((await net.waitFor(kept, /^SECOND .*$/m))[0], /SECOND ok/, 'kept alive through both NATs');
    t.regex((await net.waitFor(bare, /^SECOND .*$/m))[0], /SECOND failed/, 'without keepalive the NATs forgot the flow');
  } finally {
    await net.stop();
    await lab.setIdleTimeout('pres', null);
    await lab.setIdleTimeout('trans', null);
  }
});
