-- One reminder's writes, as relance's worker makes them, for pgbench (bench/db_ceiling.py).
-- Mark a planned step done, store the message's 3 kB of RFC 5322 bytes, append an evidence
-- record hash-chained to the previous one, move the chain's head. bench/db_ceiling.py runs
-- these statements once per transaction, then 50 times per transaction, as prepared statements.
\set step random(1, :steps)
\set debtor random(1, 100000)
UPDATE ceiling_steps SET status = 'done', done_at = now() WHERE id = :step;
INSERT INTO ceiling_messages (step_id, debtor, body)
    VALUES (:step, :debtor, repeat(md5(:step::text) || ' ', 91))
    RETURNING id \gset message_
INSERT INTO ceiling_evidence (creditor, kind, payload, previous, digest)
    SELECT head.creditor, 'message.recorded', jsonb_build_object('message', :message_id::bigint, 'step', :step::bigint),
           head.digest, sha256(head.digest || convert_to(:message_id::text, 'UTF8'))
    FROM ceiling_chain_heads AS head WHERE head.creditor = 'default' FOR UPDATE
    RETURNING id \gset evidence_
UPDATE ceiling_chain_heads
    SET digest = (SELECT digest FROM ceiling_evidence WHERE id = :evidence_id), length = length + 1
    WHERE creditor = 'default';
