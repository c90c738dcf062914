-- Server certificate rotations: the same tables as migrations/sqlite/010_certificate_rotation.sql
-- (TEXT timestamps become timestamptz); see there and src/server/certificate-rotation.ts.
CREATE TABLE certificate_rotations (
  id              text COLLATE "C" PRIMARY KEY,
  old_thumbprint  text COLLATE "C" NOT NULL,
  old_cert_pem    text NOT NULL,
  old_key_pem     text NOT NULL,
  new_thumbprint  text COLLATE "C" NOT NULL,
  new_cert_pem    text NOT NULL,
  new_key_pem     text NOT NULL,
  grace_ms        bigint NOT NULL CHECK (grace_ms >= 0),
  started_by      text NOT NULL,
  started_at      timestamptz NOT NULL,
  completed_at    timestamptz,
  under_way       smallint UNIQUE CHECK (under_way = 1)
);

CREATE TABLE certificate_trust (
  rotation_id  text COLLATE "C" NOT NULL REFERENCES certificate_rotations(id) ON DELETE CASCADE,
  machine_id   text COLLATE "C" NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
  trusted_at   timestamptz NOT NULL,
  dropped_at   timestamptz,
  PRIMARY KEY (rotation_id, machine_id)
);
