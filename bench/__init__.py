"""Load benchmark of the auth service (`make bench`): see bench/README.md."""
