-- Reservations that are confirmed (the units leave for good) or expire on their
-- own, and idempotency keys so that a retried or late request never takes units twice.
--
-- Active reservations made before this version belong to orders that were never
-- confirmed explicitly; they are taken as confirmed, which is what they meant.

ALTER TABLE stock ADD COLUMN confirmado INTEGER NOT NULL DEFAULT 0 CHECK (confirmado >= 0);

CREATE TABLE reservas_nueva (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL only for a placeholder: a key released before any reservation was made with it.
    producto_id INTEGER REFERENCES stock (producto_id),
    cantidad    INTEGER NOT NULL CHECK (cantidad >= 0),
    estado      TEXT    NOT NULL CHECK (estado IN ('activa', 'confirmada', 'liberada', 'expirada')),
    clave       TEXT    UNIQUE,
    -- Unix time in milliseconds after which an active reservation is released by itself.
    expira_en   INTEGER NOT NULL,
    creada_en   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

INSERT INTO reservas_nueva (id, producto_id, cantidad, estado, expira_en, creada_en)
SELECT id, producto_id, cantidad, CASE estado WHEN 'activa' THEN 'confirmada' ELSE estado END, 0, creada_en
FROM reservas;

UPDATE stock SET confirmado = reservado, reservado = 0;

DROP TABLE reservas;
ALTER TABLE reservas_nueva RENAME TO reservas;

CREATE INDEX reservas_activas_por_vencimiento ON reservas (expira_en) WHERE estado = 'activa';
