-- The same table, its check written with `=`: a list of three or more values after
-- IN makes SQLite build a temporary table at every write. Payments are never
-- deleted, so ids need no AUTOINCREMENT bookkeeping either.
CREATE TABLE pagos_nueva (
    id         INTEGER PRIMARY KEY,
    estado     TEXT    NOT NULL CHECK (estado = 'aprobado' OR estado = 'rechazado' OR estado = 'anulado'
                                       OR estado = 'reembolsado'),
    monto      INTEGER NOT NULL CHECK (monto > 0 OR estado = 'anulado'),
    moneda     TEXT    NOT NULL,
    medio      TEXT    NOT NULL,
    referencia TEXT,
    creado_en  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

INSERT INTO pagos_nueva (id, estado, monto, moneda, medio, referencia, creado_en)
SELECT id, estado, monto, moneda, medio, referencia, creado_en FROM pagos;

DROP TABLE pagos;
ALTER TABLE pagos_nueva RENAME TO pagos;

CREATE INDEX pagos_por_referencia ON pagos (referencia);
