/** The portal's machine list and page show each machine's Tentacle version and "upgrade available". */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MachineView } from '../../src/api/contract.js';
import { toHtml } from '../../src/server/portal/html.js';
import { machineRow, versionCell } from '../../src/server/portal/pages/dashboard.js';

const machine = (tentacleVersion: string | null, upgradeAvailable: string | null): MachineView => ({
  id: 'm-1', name: 'web-01', kind: 'target', thumbprint: 'A'.repeat(64), nextThumbprint: null, commsStyle: 'polling', endpoint: null, environments: ['Production'], roles: ['web'],
  workerPools: [], carrier: 'tcp', tentacleVersion, upgradeAvailable, lastSeenAt: null, lastHealth: 'healthy', lastHealthAt: null, createdAt: '2026-01-01T00:00:00.000Z',
  connections: [], nodes: [], online: false, connectedSince: null,
});

describe('portal: Tentacle version and upgrade available', () => {
  test('a machine with a newer version distributed says so, with the version', () => {
    const cell = toHtml(versionCell(machine('0.1.0', '0.2.0')));
    assert.match(cell, /^0\.1\.0 <span class="tag upgrade-available"[^>]*>upgrade available: 0\.2\.0<\/span>$/);
    assert.match(toHtml(machineRow(machine('0.1.0', '0.2.0'), 10943, true)), /data-field="version">0\.1\.0 <span class="tag upgrade-available"/);
  });

  test('an up-to-date or unknown version says nothing more', () => {
    assert.equal(toHtml(versionCell(machine('0.2.0', null))), '0.2.0');
    assert.equal(toHtml(versionCell(machine(null, null))), '<span class="muted">unknown</span>');
    // Versions are escaped like any other text.
    assert.match(toHtml(versionCell(machine('<b>', '<i>'))), /^&lt;b&gt; .*upgrade available: &lt;i&gt;/);
  });
});
