-- A referencia can be voided: pedidos does so when it cannot tell whether an order
-- was charged, so that a charge arriving late with that referencia is refused
-- rather than taking money for an order that already failed. A voided referencia
-- is recorded as a payment of 0 with estado 'anulado'. A charge of an order that
-- failed anyway is refunded: estado 'reembolsado'.

CREATE TABLE pagos_nueva (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    estado     TEXT    NOT NULL CHECK (estado IN ('aprobado', 'rechazado', 'anulado', 'reembolsado')),
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
