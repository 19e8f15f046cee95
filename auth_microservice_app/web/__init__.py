"""The HTTP pieces every blueprint shares: request bodies, fields, response helpers, the access
token check (:mod:`.auth`) and the shapes of users and token pairs."""
