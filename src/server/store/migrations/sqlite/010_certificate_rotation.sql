-- Server certificate rotations (src/server/certificate-rotation.ts). One row per rotation;
-- at most one is under way (completed_at NULL). The old and new certificates are kept here
-- whole, keys included, like the cluster's shared certificate in cluster_settings: every
-- node must be able to present either (the old one to Tentacles that ask for it by
-- thumbprint). The PostgreSQL migration of the same number creates the same tables.
CREATE TABLE certificate_rotations (
  id              TEXT PRIMARY KEY,
  old_thumbprint  TEXT NOT NULL,
  old_cert_pem    TEXT NOT NULL,
  old_key_pem     TEXT NOT NULL,
  new_thumbprint  TEXT NOT NULL,
  new_cert_pem    TEXT NOT NULL,
  new_key_pem     TEXT NOT NULL,
  -- How long after completion Tentacles are told to drop the old thumbprint.
  grace_ms        INTEGER NOT NULL CHECK (grace_ms >= 0),
  started_by      TEXT NOT NULL,
  started_at      TEXT NOT NULL,
  completed_at    TEXT,
  -- 1 while under way, NULL once completed: UNIQUE lets one rotation be under way at a time
  -- (many NULLs are allowed), whichever node starts it.
  under_way       INTEGER UNIQUE CHECK (under_way = 1)
);

-- Which machines confirmed (over their pinned link) that they trust a rotation's new
-- thumbprint, and dropped its old one.
CREATE TABLE certificate_trust (
  rotation_id  TEXT NOT NULL REFERENCES certificate_rotations(id) ON DELETE CASCADE,
  machine_id   TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
  trusted_at   TEXT NOT NULL,
  dropped_at   TEXT,
  PRIMARY KEY (rotation_id, machine_id)
);
