-- Reservations made for a whole order at once (POST /reservas): one row per line,
-- all named by the order's key in `lote`, reserved, confirmed or released together.
-- A lote is held until its owner confirms or releases it (its rows never expire:
-- expira_en is the largest integer), so an order that was charged can always
-- confirm its units. A lote released before it was made is recorded as one row
-- with no product, so that a late request with that key reserves nothing.
--
-- The table is rebuilt so that its checks compare with `=` (a list of three or more
-- values after IN makes SQLite build a temporary table at every write), and so that
-- a lote's rows stay out of the indexes they never need (a per-line key, expiry).
CREATE TABLE reservas_nueva (
    id          INTEGER PRIMARY KEY,
    -- NULL only for a placeholder: a key released before any reservation was made with it.
    producto_id INTEGER REFERENCES stock (producto_id),
    cantidad    INTEGER NOT NULL CHECK (cantidad >= 0),
    estado      TEXT    NOT NULL CHECK (estado = 'activa' OR estado = 'confirmada' OR estado = 'liberada'
                                        OR estado = 'expirada'),
    -- The Idempotency-Key of a reservation asked for on its own (POST /reservar).
    clave       TEXT,
    -- The key of the order whose lote the row belongs to (POST /reservas).
    lote        TEXT,
    -- Unix time in milliseconds after which an active reservation is released by itself.
    expira_en   INTEGER NOT NULL,
    creada_en   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

INSERT INTO reservas_nueva (id, producto_id, cantidad, estado, clave, expira_en, creada_en)
SELECT id, producto_id, cantidad, estado, clave, expira_en, creada_en FROM reservas;

DROP TABLE reservas;
ALTER TABLE reservas_nueva RENAME TO reservas;

CREATE UNIQUE INDEX reservas_por_clave ON reservas (clave) WHERE clave IS NOT NULL;
CREATE INDEX reservas_por_lote ON reservas (lote) WHERE lote IS NOT NULL;
CREATE INDEX reservas_activas_por_vencimiento ON reservas (expira_en) WHERE estado = 'activa' AND lote IS NULL;
