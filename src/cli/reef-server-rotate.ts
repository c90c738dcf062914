import type { Command } from 'commander';
import type { CertificateRotationView } from '../api/contract.js';
import { ReefError } from '../errors.js';
import { note, printJson, printLine, runAction } from './common.js';
import { cell, formatAge, formatTable } from './output.js';
import { addConnectionOptions, connect, type ConnectionOpts } from './reef-connection.js';
import { parseDuration } from './reef-tokens.js';

/**
 * `reef server rotate-certificate`: the server certificate rotation (docs/operations.md).
 * Routes: POST /api/server/certificate-rotation (start), GET (--status), POST .../complete.
 */
interface RotateOpts extends ConnectionOpts {
  status?: boolean;
  complete?: boolean;
  grace?: string;
}

const PATH = '/api/server/certificate-rotation';

export function registerRotateCertificateCommand(server: Command): void {
  addConnectionOptions(
    server
      .command('rotate-certificate')
      .description('replace the server certificate Tentacles pin, without losing any: start, then --status, then --complete')
      .option('--status', 'show how many Tentacles trust the new certificate, and list those that do not')
      .option('--complete', 'switch every node to the new certificate (Tentacles that missed the rotation still get in: docs/operations.md)')
      .option('--grace <duration>', 'when starting: how long after --complete Tentacles keep trusting the old thumbprint, e.g. 1h or 7d', '1d'),
  ).action(
    runAction(async (opts: RotateOpts) => {
      if (opts.status && opts.complete) throw new ReefError('REEF_INVALID_ARGUMENT', 'Give --status or --complete, not both.');
      const client = await connect(opts);
      const view = opts.status
        ? await client.json<CertificateRotationView>('GET', PATH)
        : opts.complete
          ? await client.json<CertificateRotationView>('POST', `${PATH}/complete`)
          : await client.json<CertificateRotationView>('POST', PATH, { body: { graceSeconds: parseDuration(opts.grace ?? '1d', '--grace', 0, 366 * 86_400) } });
      if (opts.json) return printJson(view);
      printLine(describeRotation(view));
      if (!opts.status) note(nextStep(view));
    }),
  );
}

export function describeRotation(view: CertificateRotationView, now = Date.now()): string {
  const lines = [
    `Rotation ${view.id}: ${view.state === 'completed' ? `completed ${view.completedAt}` : 'under way'} (started ${view.startedAt} by ${view.startedBy})`,
    `  old thumbprint: ${view.oldThumbprint}`,
    `  new thumbprint: ${view.newThumbprint}`,
    `  Tentacles trusting the new thumbprint: ${view.trusting} of ${view.machines}` + (view.state === 'completed' ? `; dropped the old one: ${view.dropped}` : ''),
  ];
  if (view.dropOldAfter) lines.push(`  Tentacles are told to drop the old thumbprint from ${view.dropOldAfter}`);
  if (view.notTrusting.length) {
    lines.push('', 'Not trusting the new thumbprint yet:');
    lines.push(formatTable(['MACHINE', 'CONNECTED', 'LAST SEEN', 'THUMBPRINT'], view.notTrusting.map((m) => [m.name, m.connected ? 'yes' : 'no', m.lastSeenAt ? formatAge(m.lastSeenAt, now) : cell(null), m.thumbprint])));
  }
  return lines.join('\n');
}

function nextStep(view: CertificateRotationView): string {
  if (view.state === 'under-way') {
    return (
      'Tentacles are told the new thumbprint as they connect. Before completing, let admin scripts accept both: ' +
      `REEF_SERVER_THUMBPRINT=${view.oldThumbprint},${view.newThumbprint}. Watch with "reef server rotate-certificate --status", then run "reef server rotate-certificate --complete".`
    );
  }
  return (
    `Every node now presents ${view.newThumbprint}. Set REEF_SERVER_THUMBPRINT=${view.newThumbprint} for the admin CLI, and give new Tentacles that thumbprint ` +
    '(install lines made from now on carry it). Tentacles that missed the rotation still get in and learn it (docs/operations.md).'
  );
}
