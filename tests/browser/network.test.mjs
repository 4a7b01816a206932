// The session's network in the page, end to end, in Debian's headless chromium driven by
// playwright-core: a real `isolab serve` of the built page (dist/). alpha (with a published
// port) and beta are made with the form; the network picture shows both plugged into the
// session's bridge with addresses in one /24; alpha's card links its port, where its busybox
// httpd answers; alpha and beta ping each other by name, while gamma, another browser's session,
// reaches neither; the move control moves `cable0` from alpha to beta, and the live views and the
// picture show the cable it leaves. When the session ends, its bridge, veths, iptables rules and
// IPAM leases are gone from the host, and when the server stops, its own rules too.
// Run by `cargo xtask test` as `node --test tests/browser/` (root, after `trunk build`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  launchBrowser, openPage, screenshot, startServer, stopServer, terminals, until,
} from './harness.mjs';

const shot = screenshot('network');

/** What networks leave on the host, read with the host's tools: isolab's bridges and the links
 * plugged into them, iptables rules, the firewall's nft table, and the IPAM leases in the
 * default data root. */
function networkTraces() {
  const links = execFileSync('ip', ['-o', 'link', 'show']).toString().split('\n')
    .filter((l) => /^\d+: isl-/.test(l) || l.includes(' master isl-'))
    .map((l) => `link ${l.split(': ')[1].split('@')[0]}`);
  const rules = execFileSync('iptables-save').toString().split('\n')
    .filter((l) => l.includes('isolab-') && !l.startsWith('#'))
    .map((l) => `iptables ${l}`);
  let tables = [];
  try {
    tables = execFileSync('nft', ['list', 'tables']).toString().split('\n')
      .filter((l) => l.includes('isolab')).map((l) => `nft ${l}`);
  } catch { /* no nft: the table is not looked at */ }
  let leases = [];
  try {
    leases = readdirSync('/var/lib/isolab/cni/ipam').map((e) => `ipam ${e}`);
  } catch { /* no folder: no lease */ }
  return [...links, ...rules, ...tables, ...leases].sort();
}

/** The traces once they equal `want`, or after 20 s as they are (teardown runs behind the reply). */
async function waitTraces(want) {
  const end = Date.now() + 20000;
  let now = networkTraces();
  while (JSON.stringify(now) !== JSON.stringify(want) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    now = networkTraces();
  }
  return now;
}

// A host port nothing else is likely to hold (the server's own is chosen by the kernel).
const hostPort = 20000 + (process.pid % 20000);

test('the network picture, ping by name, a published port and an interface that moves', async () => {
  const beforeServer = networkTraces();
  const [server, url] = await startServer();
  const beforeSession = networkTraces();
  const browser = await launchBrowser();
  let stopped = false;
  try {
    const [page, errors] = await openPage(browser, url, { width: 1500, height: 1300 });
    const { waitScreen, type } = terminals(page);

    for (const [name, publish] of [['alpha', `${hostPort}:80`], ['beta', '']]) {
      await page.fill('input[name=name]', name);
      await page.fill('input[name=hostname]', name);
      await page.fill('input[name=publish]', publish);
      await page.click('form.spec-form button[type=submit]');
      await page.waitForSelector(`.card[data-name="${name}"]`, { timeout: 15000 });
      await waitScreen(name, /[#$]\s*$/m);
    }

    // The picture: the session's bridge on the host, both containers plugged into it.
    const node = (name) => `.net-picture .net-node[data-container="${name}"]`;
    const address = (name) => page.getAttribute(node(name), 'data-address');
    const addresses = [];
    for (const name of ['alpha', 'beta']) {
      await page.waitForSelector(`${node(name)}.attached`, { timeout: 15000 });
      addresses.push(await until(page, () => address(name), (a) => /^\d+\.\d+\.\d+\.\d+$/.test(a ?? ''),
        `${name}'s address in the picture`));
      assert.ok(await page.$(`${node(name)} .net-link`), `${name}'s line from the bridge`);
      assert.equal((await page.textContent(`.card[data-name="${name}"] .address`)).trim(), addresses.at(-1),
        `${name}'s card shows its address`);
    }
    const net24 = (a) => a.split('.').slice(0, 3).join('.');
    assert.equal(net24(addresses[0]), net24(addresses[1]), `one /24: ${addresses}`);
    assert.notEqual(addresses[0], addresses[1]);
    // The host view's network section: the bridge by name, its subnet, each host-side veth.
    const bridge = await until(page, () => page.getAttribute('.net-picture', 'data-bridge'), Boolean,
      "the bridge (the host view's network section)");
    const bridgeText = await page.textContent('.net-picture .net-bridge');
    assert.ok(bridgeText.includes(bridge), bridgeText);
    assert.ok(bridgeText.includes(`${net24(addresses[0])}.0/24`), `the subnet in ${bridgeText}`);
    await until(page, () => page.textContent(`${node('alpha')} .veth-label`), (t) => /^veth/.test(t ?? ''),
      "alpha's host-side veth");

    // The published port: a label in the picture and a link on the card.
    assert.equal((await page.textContent(`${node('alpha')} .node-port`)).trim(), `127.0.0.1:${hostPort} → :80`);
    const link = `.card[data-name="alpha"] a.port[href="http://127.0.0.1:${hostPort}/"]`;
    assert.equal((await page.textContent(link)).trim(), `:${hostPort} → :80`);
    assert.equal(await page.getAttribute(link, 'target'), '_blank');
    // …which answers: busybox httpd in alpha, fetched where the link points.
    await type('alpha', 'mkdir -p /www && echo hello from alpha > /www/index.html && httpd -p 80 -h /www');
    const served = await until(page, () => fetch(`http://127.0.0.1:${hostPort}/`).then((r) => r.text()),
      (t) => t === 'hello from alpha\n', 'the published port serves alpha\'s httpd', 10000);
    assert.equal(served, 'hello from alpha\n');

    // Names resolve within the session: alpha pings beta, beta pings alpha.
    await type('alpha', 'ping -c 1 beta');
    await waitScreen('alpha', /1 packets received/);
    await type('beta', 'ping -c 1 alpha');
    await waitScreen('beta', /1 packets received/);

    // Another browser is another session, on another bridge: its gamma reaches neither.
    const [other, otherErrors] = await openPage(browser, url);
    const gammaTerm = terminals(other);
    await other.fill('input[name=name]', 'gamma');
    await other.click('form.spec-form button[type=submit]');
    await other.waitForSelector('.card[data-name="gamma"]', { timeout: 15000 });
    await gammaTerm.waitScreen('gamma', /[#$]\s*$/m);
    const gammaAddress = await until(other, () => other.getAttribute('.net-node[data-container="gamma"]', 'data-address'),
      (a) => /^\d+\.\d+\.\d+\.\d+$/.test(a ?? ''), "gamma's address in its own picture");
    assert.notEqual(net24(gammaAddress), net24(addresses[0]), 'another session, another subnet');
    await gammaTerm.type('gamma', `ping -c 1 -W 2 ${addresses[0]}; ping -c 1 -W 2 ${addresses[1]}; ping -c 1 alpha`);
    // The pings run in turn, so once the name has failed both addresses have had their try.
    // Without egress gamma has no route off its subnet: the kernel refuses the send.
    const gammaScreen = await gammaTerm.waitScreen('gamma', /bad address 'alpha'/);
    assert.equal(gammaScreen.match(/Network is unreachable|0 packets received/g)?.length, 2, gammaScreen);
    assert.doesNotMatch(gammaScreen, /[1-9] packets received/, 'nothing from alpha or beta answers gamma');
    assert.deepEqual(otherErrors, [], 'no errors in the other page');
    await other.context().close();

    // Move cable0 from alpha to beta: a veth pair is made in alpha, one end moves to beta.
    const iface = (name, i) => `.stack[data-container="${name}"] .cview .iface[data-iface="${i}"]`;
    await page.fill('.net-move input[name=interface]', 'cable0');
    await page.selectOption('.net-move select[name=from]', 'alpha');
    await page.selectOption('.net-move select[name=to]', 'beta');
    await page.click('.net-move button.move');
    await page.waitForSelector('.net-move .move-done', { timeout: 10000 });
    await page.waitForSelector(iface('alpha', 'cable0p'), { timeout: 5000 });
    await page.waitForSelector(iface('beta', 'cable0'), { timeout: 5000 });
    assert.equal(await page.$(iface('alpha', 'cable0')), null, 'cable0 left alpha');
    assert.equal(await page.$(iface('beta', 'cable0p')), null, 'its other end stayed in alpha');
    // Each end says where the other is, and the picture draws the cable between the boxes.
    await until(page, () => page.textContent(`${iface('alpha', 'cable0p')} .iface-peer`),
      (t) => /cable0 in beta/.test(t ?? ''), "alpha's cable0p names its peer");
    await until(page, () => page.textContent(`${iface('beta', 'cable0')} .iface-peer`),
      (t) => /cable0p in alpha/.test(t ?? ''), "beta's cable0 names its peer");
    assert.match(await page.textContent(`${iface('beta', 'cable0')} .iface-kind`), /veth/);
    const cable = '.net-picture .net-cable[data-from="alpha"][data-to="beta"]';
    await page.waitForSelector(cable, { timeout: 5000 });
    assert.deepEqual(await page.$$eval(`${cable} text`, (t) => t.map((e) => e.textContent)), ['cable0p', 'cable0']);

    // The picture, the terminals and the live views with the moved interface, in one shot.
    await page.$eval('.network', (el) => el.scrollIntoView());
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });

    // Again: beta has a cable0 now, and the server's refusal lands on the interface field.
    await page.click('.net-move button.move');
    await until(page, () => page.textContent('.net-move .field-error'), (t) => /cable0/.test(t ?? ''),
      'interface_exists next to the interface field');

    for (const name of ['alpha', 'beta']) {
      await page.click(`.card[data-name="${name}"] button.remove`);
      await page.waitForSelector(`.card[data-name="${name}"]`, { state: 'detached', timeout: 15000 });
    }
    await until(page, () => page.$$eval('.net-picture .net-node', (n) => n.length), (n) => n === 0,
      'the picture is back to the bridge alone');
    assert.deepEqual(errors, [], 'no errors in the page');

    // Both sessions end (their pages close; the server's grace is 1 s): nothing of their
    // networks is left on the host, and once the server stops, nothing of its own.
    await page.context().close();
    assert.deepEqual(await waitTraces(beforeSession), beforeSession, 'nothing left after the sessions end');
    await browser.close();
    stopped = true;
    await stopServer(server);
    assert.deepEqual(await waitTraces(beforeServer), beforeServer, 'nothing left after the server stops');
  } finally {
    if (!stopped) {
      await browser.close();
      await stopServer(server);
    }
  }
});
