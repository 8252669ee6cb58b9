"""Helpers below every role: the only code two roles share. Nothing here imports a role."""
