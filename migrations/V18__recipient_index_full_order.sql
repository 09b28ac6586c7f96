-- pftrack schema, version 18: the two recipient indexes carry a search's whole order
-- (issue 13: recipient search p99 under 32 clients; issue 16: status lookups at 50 M).
--
-- A recipient search reads one page of rows `ORDER BY arrived_at, host, queue_id,
-- recipient, orig_recipient` (descending; the key of a row, so pages continue from a
-- cursor) for one address, and `pftrack status ADDRESS` reads the newest keys `(host,
-- queue_id, arrived_at)` of one address. With the indexes on (lower(address),
-- arrived_at) alone, the page's order past arrived_at came from a sort, so only a plan
-- made for the address's own row count was safe: over the monthly partitions of V14 a
-- cached generic plan sorted all 97 k rows of the busiest address for one page (1.2 s),
-- and every search was planned again (about 1 ms, as long as it ran). With the whole
-- order in the index, one generic plan serves every address: an ordered append of the
-- months' index scans, no sort, stopping at the page (planned in 0.02 ms). The status
-- lookup's key read becomes index-only (no heap page per candidate row).
--
-- Same names, so plans and docs that name them stay true. On a partitioned parent an
-- index is built on every partition; rebuilding takes minutes per 10 M recipient rows,
-- with writes to delivery_to waiting meanwhile (the loader resumes where it stopped).

DROP INDEX delivery_to_recipient;
CREATE INDEX delivery_to_recipient ON delivery_to
    (lower(recipient), arrived_at, host, queue_id, recipient, orig_recipient);

DROP INDEX delivery_to_orig_recipient;
CREATE INDEX delivery_to_orig_recipient ON delivery_to
    (lower(orig_recipient), arrived_at, host, queue_id, recipient, orig_recipient)
    WHERE orig_recipient <> '';
