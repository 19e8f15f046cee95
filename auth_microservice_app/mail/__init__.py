"""Mail: the transactional outbox, security notices, single-use link tokens, message rendering
and delivery, and the per-address budgets of mail sent on request."""
