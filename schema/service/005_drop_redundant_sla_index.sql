-- order-status-service schema, version 5: one index on the SLA due time instead of two.
--
-- orders_sla_due_idx (sla_due_at) and orders_sla_due_key_idx (sla_due_at, order_id) have the
-- same predicate, and the second serves every query the first did (sla_due_at is its leading
-- column: the stuck count, `stuck=`/`due_before=` filters, keyset pages by due time). Every
-- status change is an update of oss.orders that changes sla_due_at, so it is not HOT and writes
-- an entry into every index: the consumer's hottest write paid for this one twice
-- (docs/performance.md, "End to end", session of 2026-12-08 02:23).
DROP INDEX IF EXISTS oss.orders_sla_due_idx;
