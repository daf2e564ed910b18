-- Each order is one state machine. Its stage (etapa) is one of:
--   registrado  recorded with its prices; its units may be reserved and its charge
--               under way, under keys derived from the order;
--   cobrado     charged (pago_id), the confirmation of its units owed at inventario;
--   cerrado     over, with its outcome (desenlace) and, for a failed order, its error
--               code (causa); debe_liberar and debe_anular_cobro say what is still
--               owed to inventario (release) and to pagos (void or refund).
-- Every change names the stage it moves from, so a stale change finds nothing to do.
-- After vence_en (Unix milliseconds) an order that was not charged never is.
-- fail is the original design's controlled failure, kept to charge as asked.

DROP INDEX pedidos_sin_terminar;

-- Checks compare with `=`: a list of three or more values after IN makes SQLite
-- build a temporary table at every write.
ALTER TABLE pedidos ADD COLUMN etapa TEXT NOT NULL DEFAULT 'cerrado'
    CHECK (etapa = 'registrado' OR etapa = 'cobrado' OR etapa = 'cerrado');
ALTER TABLE pedidos ADD COLUMN desenlace TEXT
    CHECK (desenlace = 'confirmado' OR desenlace = 'rechazado' OR desenlace = 'fallido');
ALTER TABLE pedidos ADD COLUMN causa TEXT;
ALTER TABLE pedidos ADD COLUMN fail INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pedidos ADD COLUMN debe_liberar INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pedidos ADD COLUMN debe_anular_cobro INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pedidos ADD COLUMN vence_en INTEGER NOT NULL DEFAULT 0;

-- Orders of the previous version: a confirmed order still owing its confirmation is
-- charged; one left pendiente is registrado past its deadline, so that recovery
-- settles it by what pagos knows and never charges it anew.
UPDATE pedidos SET
    etapa = CASE
        WHEN estado = 'confirmado' AND pendiente IS 'confirmar' THEN 'cobrado'
        WHEN estado = 'pendiente' AND paso = 'cobrado' AND pago_id IS NOT NULL THEN 'cobrado'
        WHEN estado = 'pendiente' THEN 'registrado'
        ELSE 'cerrado' END,
    desenlace = CASE
        WHEN estado = 'confirmado' AND pendiente IS 'confirmar' THEN NULL
        WHEN estado = 'pendiente' THEN NULL
        ELSE estado END,
    causa = CASE WHEN estado <> 'fallido' THEN NULL
        WHEN error IN ('producto_not_found', 'total_too_large', 'insufficient_stock', 'reserva_released',
                       'peer_unavailable', 'peer_error', 'interrupted') THEN error
        WHEN error IN ('reserva_expired', 'reserva_not_active') THEN 'reserva_released'
        ELSE 'interrupted' END,
    debe_liberar = (pendiente IS 'liberar'),
    debe_anular_cobro = verificar_pago;

ALTER TABLE pedidos DROP COLUMN estado;
ALTER TABLE pedidos DROP COLUMN paso;
ALTER TABLE pedidos DROP COLUMN pendiente;
ALTER TABLE pedidos DROP COLUMN verificar_pago;
ALTER TABLE pedidos DROP COLUMN respuesta;
ALTER TABLE pedidos DROP COLUMN error;
ALTER TABLE pedidos DROP COLUMN actualizado_en;

CREATE INDEX pedidos_sin_terminar ON pedidos (id)
    WHERE etapa <> 'cerrado' OR debe_liberar = 1 OR debe_anular_cobro = 1;
