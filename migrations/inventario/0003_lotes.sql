-- Reservations made for a whole order at once (POST /reservas): one row per line,
-- all named by the order's key in `lote`, reserved, confirmed or released together.
-- A lote is held until its owner confirms or releases it (its rows never expire:
-- expira_en is the largest integer), so an order that was charged can always
-- confirm its units. A lote released before it was made is recorded as one row
-- with no product, so that a late request with that key reserves nothing.
ALTER TABLE reservas ADD COLUMN lote TEXT;

CREATE INDEX reservas_por_lote ON reservas (lote) WHERE lote IS NOT NULL;
