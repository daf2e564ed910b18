-- Durable order state: each step's outcome is recorded before the next step, the
-- work left after answering (confirm or release reservations) is kept until done,
-- and Idempotency-Key makes a retried POST /pedidos return the same order.

-- The last step done: creado, reservado, cobrado, cerrado (nothing left to do in the flow).
ALTER TABLE pedidos ADD COLUMN paso TEXT NOT NULL DEFAULT 'cerrado'
    CHECK (paso IN ('creado', 'reservado', 'cobrado', 'cerrado'));
-- What is left to do at inventario once the outcome is known: confirmar, liberar, or nothing.
ALTER TABLE pedidos ADD COLUMN pendiente TEXT CHECK (pendiente IN ('confirmar', 'liberar'));
-- 1 when the order failed while a charge's answer was lost: pagos must still be told
-- to void the referencia, so the charge never happens (or is found and refunded).
ALTER TABLE pedidos ADD COLUMN verificar_pago INTEGER NOT NULL DEFAULT 0;
-- The HTTP status and error code the order was answered with (NULL while in progress).
ALTER TABLE pedidos ADD COLUMN respuesta INTEGER;
ALTER TABLE pedidos ADD COLUMN error TEXT;
-- Unix milliseconds of the last change.
ALTER TABLE pedidos ADD COLUMN actualizado_en INTEGER NOT NULL DEFAULT 0;

UPDATE pedidos SET respuesta = CASE estado
    WHEN 'confirmado' THEN 201 WHEN 'rechazado' THEN 402 WHEN 'fallido' THEN 503 END
WHERE estado <> 'pendiente';

CREATE INDEX pedidos_sin_terminar ON pedidos (id)
    WHERE estado = 'pendiente' OR pendiente IS NOT NULL OR verificar_pago = 1;

CREATE TABLE claves_idempotencia (
    clave     TEXT    PRIMARY KEY,
    -- The request it was first used with, in canonical form.
    huella    TEXT    NOT NULL,
    pedido_id INTEGER NOT NULL REFERENCES pedidos (id)
) WITHOUT ROWID;

-- A random name for this database, so that the keys pedidos gives its peers
-- (referencias, reservation keys) never collide with another pedidos database's.
CREATE TABLE instancia (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    prefijo TEXT    NOT NULL
);
INSERT INTO instancia (id, prefijo) VALUES (1, lower(hex(randomblob(6))));
