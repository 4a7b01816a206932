// A workshop end to end, in Debian's headless chromium driven by playwright-core: a trainer
// creates a workshop from the page; two attendees join in two browsers (two contexts: two
// cookies, two sessions) with the code's link and their names; both finish the UTS lesson, its
// checks turning green (Ada types every step and makes the third container with the form; Bob
// types two and uses "Show me" for the third); the trainer sees both progress bars full, watches
// Ada's terminal read-only (what she types appears; what the trainer types goes nowhere), and
// ends the workshop, which Ada's page reports.
// Run by `cargo xtask test` as `node --test tests/browser/` (root, after `trunk build`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  launchBrowser, openPage, screenshot, startServer, stopServer, terminals, until,
} from './harness.mjs';

const ADMIN = 'trainer-secret-2026';

test('a trainer runs the UTS lesson for two attendees and watches one read-only', async () => {
  const [server, url] = await startServer([], ['--admin-token', ADMIN]);
  const browser = await launchBrowser();
  try {
    // The trainer: the token from the link, a workshop from the form.
    const [trainer, trainerErrors] = await openPage(browser, `${url}?trainer&admin=${ADMIN}`);
    const sent = [];
    trainer.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(f.payload)));
    await trainer.waitForSelector('#trainer-status[data-status=admitted]');
    await trainer.waitForSelector('#workshop-lesson option[value=uts]', { state: 'attached' });
    await trainer.selectOption('#workshop-lesson', 'uts');
    await trainer.fill('#workshop-title', 'Namespaces 101');
    await trainer.click('#workshop-create-submit');
    await trainer.waitForSelector('#workshop-code');
    const code = (await trainer.textContent('#workshop-code')).trim();
    assert.match(code, /^[A-Z2-9]{6}$/);
    const link = await trainer.inputValue('#workshop-link');
    assert.ok(link.startsWith(url) && link.includes(`join=${code}`), link);

    // Two attendees, each in a browser of their own, join by the link.
    const attendees = {};
    for (const name of ['Ada', 'Bob']) {
      const [page, errors] = await openPage(browser, link);
      assert.equal(await page.inputValue('#join-code'), code, 'the code comes from the link');
      await page.fill('#join-name', name);
      await page.click('#join-submit');
      await page.waitForSelector('#lesson-panel[data-lesson=uts]');
      assert.match(await page.textContent('#workshop-label'), new RegExp(name));
      const t = terminals(page);
      await t.waitScreen('alpha', /[#$]\s*$/m);
      attendees[name] = { page, errors, ...t };
    }
    for (const name of ['Ada', 'Bob']) {
      await trainer.waitForSelector(`.attendee[data-name=${name}][data-connected=true] .attendee-progress[data-done="0"][data-total="3"]`);
    }

    const step = (page, i, state) => page.waitForSelector(`.step[data-step="${i}"]${state}`, { timeout: 20000 });
    for (const name of ['Ada', 'Bob']) {
      const { page, type } = attendees[name];
      // Before anything is typed, the first check fails and says why.
      await step(page, 0, '[data-current=true] .last-check');
      await type('alpha', 'readlink /proc/self/ns/uts > /tmp/uts');
      await step(page, 0, '[data-passed=true][data-solved=false]');
      await type('alpha', 'hostname gamma');
      await step(page, 1, '[data-passed=true][data-solved=false]');
      await step(page, 2, '[data-current=true]');
    }
    // Ada makes delta in alpha's UTS namespace with the form; Bob asks to be shown.
    const ada = attendees.Ada.page;
    await ada.fill('input[name="name"]', 'delta');
    await ada.fill('input[name="cmd"]', 'sh');
    await ada.selectOption('select[name="namespaces.uts"]', 'container:alpha');
    await ada.click('.spec-form button[type=submit]');
    await step(ada, 2, '[data-passed=true][data-solved=false]');
    const bob = attendees.Bob.page;
    await bob.click('.step[data-step="2"] .show-me');
    await step(bob, 2, '[data-passed=true][data-solved=true]');
    for (const page of [ada, bob]) {
      await page.waitForSelector('#lesson-progress[data-done="3"][data-total="3"]');
      await page.waitForSelector('#lesson-panel[data-finished=true]');
    }

    // The trainer sees both progress bars full.
    for (const name of ['Ada', 'Bob']) {
      await trainer.waitForSelector(`.attendee[data-name=${name}] .attendee-progress[data-done="3"][data-total="3"]`);
    }

    // Watch Ada's alpha: her scrollback, then what she types; the trainer's keys go nowhere.
    await trainer.click('.attendee[data-name=Ada] .watch-button[data-container=alpha]');
    await trainer.waitForSelector('.spectator-terminal .pane.read-only');
    const watched = Number(await trainer.getAttribute('.spectator-terminal', 'data-handle'));
    const watchedRows = async () => {
      await trainer.locator('.spectator-terminal').scrollIntoViewIfNeeded({ timeout: 2000 });
      return trainer.$eval('.spectator-terminal',
        (el) => [...el.querySelectorAll('.xterm-rows > div')].map((r) => r.textContent).join('\n'));
    };
    await until(trainer, watchedRows, (t) => t.includes('hostname gamma'), "Ada's scrollback in the watched terminal");
    await attendees.Ada.type('alpha', 'echo watched-$((6*7))');
    await until(trainer, watchedRows, (t) => t.includes('watched-42'), "Ada's new output, live");
    await trainer.click('.spectator-terminal .xterm-screen');
    await trainer.keyboard.type('echo trainer-was-here');
    await trainer.keyboard.press('Enter');
    await trainer.waitForTimeout(1000);
    assert.doesNotMatch(await attendees.Ada.screen('alpha'), /trainer-was-here/, 'nothing the trainer types reaches Ada');
    const frames = sent.filter((p) => typeof p !== 'string').map((p) => Buffer.from(p));
    assert.ok(!frames.some((b) => b[0] === 2 && b.readUInt32BE(1) === watched), 'no input frame for the watched terminal');
    mkdirSync(dirname(screenshot('workshop-trainer')), { recursive: true });
    await trainer.screenshot({ path: screenshot('workshop-trainer') });
    await ada.screenshot({ path: screenshot('workshop-attendee') });

    // The end: Ada's page says so, and the dashboard shows it ended.
    trainer.once('dialog', (d) => d.accept());
    await trainer.click('#workshop-end');
    await trainer.waitForSelector('#workshop-dashboard[data-ended=true]');
    await ada.waitForSelector('#session-ended', { timeout: 20000 });
    assert.match(await ada.textContent('#session-ended'), /workshop has ended/);

    assert.deepEqual(trainerErrors, [], 'no errors in the trainer page');
    for (const name of ['Ada', 'Bob']) {
      assert.deepEqual(attendees[name].errors, [], `no errors in ${name}'s page`);
    }
  } finally {
    await browser.close();
    await stopServer(server);
  }
});
