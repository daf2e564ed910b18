-- The id of the request that placed the order (its X-Request-Id or trace id), so
-- that its log lines in all four services can be found from the order.
ALTER TABLE pedidos ADD COLUMN request_id TEXT;
