"""The identity kernel every blueprint stands on: accounts, passwords, sessions, tokens.

- :mod:`.users`: looking accounts up, the profile, an operator's actions on an account;
- :mod:`.passwords` (the policy) and :mod:`.hashing` (argon2id on a bounded pool of threads);
- :mod:`.sessions` (opening, listing, ending) and :mod:`.rotation` (refresh tokens);
- :mod:`.signin` (where every first factor ends) and :mod:`.challenges` (second-factor ones);
- :mod:`.tokens`: every token kind signed, and the one verify path;
- :mod:`.revocation`, :mod:`.throttle`, :mod:`.login_budget`, :mod:`.ownership`.

Nothing here imports a blueprint (``auth``, ``two_factor``, ``oauth``); they import this.
"""
