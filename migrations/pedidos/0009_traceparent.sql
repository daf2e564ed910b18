-- The W3C traceparent of the request that placed the order, kept when its trace is
-- sampled, so that recovery's spans for the order link to the trace that placed it.
ALTER TABLE pedidos ADD COLUMN traceparent TEXT;
