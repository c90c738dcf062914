/** Server certificate rotations (see src/server/certificate-rotation.ts): rows, and who trusts what. */
import { ReefError } from '../../errors.js';
import { newId } from './ids.js';
import { toTimestamp } from './input.js';
import { sql, type Database } from './sql.js';
import type { CertificateRotation, CertificateRotationInsert, CertificateTrust, Store, Timestamp } from './types.js';

interface RotationRow {
  id: string;
  old_thumbprint: string;
  old_cert_pem: string;
  old_key_pem: string;
  new_thumbprint: string;
  new_cert_pem: string;
  new_key_pem: string;
  grace_ms: number | string;
  started_by: string;
  started_at: Timestamp;
  completed_at: Timestamp | null;
}

function toRotation(r: RotationRow): CertificateRotation {
  return {
    id: r.id,
    old: { thumbprint: r.old_thumbprint, certPem: r.old_cert_pem, keyPem: r.old_key_pem },
    next: { thumbprint: r.new_thumbprint, certPem: r.new_cert_pem, keyPem: r.new_key_pem },
    graceMs: Number(r.grace_ms),
    startedBy: r.started_by,
    startedAt: r.started_at,
    completedAt: r.completed_at,
  };
}

type Rotations = Pick<Store, 'insertCertificateRotation' | 'latestCertificateRotation' | 'completeCertificateRotation' | 'recordCertificateTrust' | 'listCertificateTrust'>;

export function certificateRotations(database: Database): Rotations {
  return {
    insertCertificateRotation: (rotation: CertificateRotationInsert) =>
      database.transaction(async (db) => {
        const open = await db.one<{ id: string }>(sql`SELECT id FROM certificate_rotations WHERE under_way = 1`);
        if (open) {
          throw new ReefError('REEF_ROTATION_IN_PROGRESS', `A server certificate rotation (${open.id}) is under way already: complete it ("reef server rotate-certificate --complete") before starting another.`);
        }
        const { old, next } = rotation;
        const row = await db.one<RotationRow>(sql`INSERT INTO certificate_rotations
          (id, old_thumbprint, old_cert_pem, old_key_pem, new_thumbprint, new_cert_pem, new_key_pem, grace_ms, started_by, started_at, under_way)
          VALUES (${newId('rot')}, ${old.thumbprint}, ${old.certPem}, ${old.keyPem}, ${next.thumbprint}, ${next.certPem}, ${next.keyPem},
            ${rotation.graceMs}, ${rotation.startedBy}, ${new Date().toISOString()}, 1) RETURNING *`);
        return toRotation(row!);
      }),

    latestCertificateRotation: async () => {
      // The one under way if any (there is at most one), else the last completed: never
      // decided by start times alone, which two quick rotations may share to the millisecond.
      const row = await database.one<RotationRow>(
        sql`SELECT * FROM certificate_rotations ORDER BY (completed_at IS NULL) DESC, completed_at DESC, started_at DESC LIMIT 1`,
      );
      return row ? toRotation(row) : null;
    },

    completeCertificateRotation: async (id, at) => {
      const row = await database.one<RotationRow>(sql`UPDATE certificate_rotations SET completed_at = ${toTimestamp(at ?? new Date())}, under_way = NULL
        WHERE id = ${id} AND under_way = 1 RETURNING *`);
      return row ? toRotation(row) : null;
    },

    recordCertificateTrust: async (rotationId, machineId, change, at) => {
      const when = toTimestamp(at ?? new Date());
      if (change === 'trusted') {
        await database.run(sql`INSERT INTO certificate_trust (rotation_id, machine_id, trusted_at) VALUES (${rotationId}, ${machineId}, ${when})
          ON CONFLICT (rotation_id, machine_id) DO NOTHING`);
      } else {
        await database.run(sql`UPDATE certificate_trust SET dropped_at = ${when} WHERE rotation_id = ${rotationId} AND machine_id = ${machineId} AND dropped_at IS NULL`);
      }
    },

    listCertificateTrust: async (rotationId) =>
      (
        await database.all<{ machine_id: string; trusted_at: Timestamp; dropped_at: Timestamp | null }>(
          sql`SELECT machine_id, trusted_at, dropped_at FROM certificate_trust WHERE rotation_id = ${rotationId} ORDER BY machine_id`,
        )
      ).map((r): CertificateTrust => ({ machineId: r.machine_id, trustedAt: r.trusted_at, droppedAt: r.dropped_at })),
  };
}
