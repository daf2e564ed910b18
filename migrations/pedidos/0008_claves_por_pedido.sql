-- Idempotency-Keys are forgotten once their order is over and older than
-- IDEMPOTENCY_RETENTION: read oldest order first, through this index, so that each
-- recovery pass reads only the keys it forgets.
CREATE INDEX claves_idempotencia_por_pedido ON claves_idempotencia (pedido_id);
