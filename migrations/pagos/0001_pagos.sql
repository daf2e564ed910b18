-- Payments. monto is an integer number of hundredths; a rejected payment is
-- recorded like an approved one.
CREATE TABLE pagos (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    estado     TEXT    NOT NULL CHECK (estado IN ('aprobado', 'rechazado')),
    monto      INTEGER NOT NULL CHECK (monto > 0),
    moneda     TEXT    NOT NULL,
    medio      TEXT    NOT NULL,
    referencia TEXT,
    creado_en  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX pagos_por_referencia ON pagos (referencia);
