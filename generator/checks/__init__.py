"""`archgen check`: checks and probes of a generated repository, which is untrusted input."""
